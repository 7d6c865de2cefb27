"""Tests for mailbot.rendering: templates, Indonesian dates, durations, escaping."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailbot.errors import MessageError
from mailbot.models import TicketStatus
from mailbot.rendering import (
    Renderer,
    default_templates_dir,
    format_duration,
    format_office_duration,
    format_response_window,
    format_size,
    format_wib,
    history_detail,
    status_label,
)

OFFICE = {
    "name": "Kecamatan Porong",
    "address": "Jl. Bhayangkari No. 1, Porong, Sidoarjo, Jawa Timur",
    "phone": "(031) 8851003",
    "email": "porong@sidoarjokab.go.id",
    "website": "https://kecporong.sidoarjokab.go.id",
}
RECEIVED = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
REFERENCE = "PRG-2026-000123-4"
CITIZEN_TEXT = "Lampu mati <script>alert('x')</script>\nsudah tiga malam & gelap."


def acknowledgement_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "office": OFFICE,
        "reference": REFERENCE,
        "complainant_name": "Budi Santoso",
        "subject": "Lampu <PJU> mati & gelap",
        "received_at": RECEIVED,
        "due_at": DUE,
        "response_hours": 24,
        "unit_name": "Seksi Perekonomian dan Pembangunan",
        "identity_missing": False,
        "inbox_address": "porong@sidoarjokab.go.id",
        "attachments_not_kept": [],
        "attachment_limit": 25 * 1024 * 1024,
    }
    fields.update(changes)
    return fields


def new_ticket_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "office": OFFICE,
        "reference": REFERENCE,
        "unit_name": "Seksi Perekonomian dan Pembangunan",
        "unit_code": "ekbang",
        "complainant_name": "Budi Santoso",
        "complainant_email": "budi.santoso@example.com",
        "subject": "Lampu <PJU> mati & gelap",
        "text": CITIZEN_TEXT,
        "attachments": [
            {"filename": "pju.jpg", "size": 12800, "quarantined": False, "reason": ""},
            {
                "filename": "bukti<1>.exe",
                "size": 4,
                "quarantined": True,
                "reason": "jenis berkas tidak diizinkan",
            },
        ],
        "received_at": RECEIVED,
        "due_at": DUE,
        "matched_keywords": ["pju", "lampu jalan"],
        "identity_missing": False,
        "related": [],
    }
    fields.update(changes)
    return fields


def follow_up_fields(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "office": OFFICE,
        "reference": REFERENCE,
        "unit_name": "Seksi Perekonomian dan Pembangunan",
        "complainant_name": "Budi Santoso",
        "subject": "Re: Lampu PJU mati",
        "text": CITIZEN_TEXT,
        "attachments": [],
        "received_at": RECEIVED,
        "due_at": DUE,
        "status": "diproses",
    }
    fields.update(changes)
    return fields


FIELDS = {
    "citizen/acknowledgement": acknowledgement_fields,
    "staff/new_ticket": new_ticket_fields,
    "staff/follow_up": follow_up_fields,
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(default_templates_dir())


def test_default_templates_dir_is_the_repository_folder() -> None:
    expected = Path(__file__).resolve().parents[1] / "templates"

    assert default_templates_dir() == expected
    assert (expected / "citizen" / "acknowledgement.txt.j2").is_file()


def test_acknowledgement_text_states_reference_deadline_and_free_service(
    renderer: Renderer,
) -> None:
    rendered = renderer.render("citizen/acknowledgement", acknowledgement_fields())

    lines = rendered.text.splitlines()
    assert lines[0] == "Yth. Bapak/Ibu Budi Santoso,"
    assert "Nomor pengaduan : PRG-2026-000123-4" in lines
    assert "Perihal         : Lampu <PJU> mati & gelap" in lines
    assert "Diterima        : Kamis, 3 Desember 2026 pukul 08.00 WIB" in lines
    assert "Ditangani oleh  : Seksi Perekonomian dan Pembangunan" in lines
    assert (
        "Pengaduan ini akan kami tanggapi dalam waktu 1x24 jam, paling lambat" in lines
    )
    assert "Jumat, 4 Desember 2026 pukul 08.00 WIB." in lines
    assert (
        "Layanan pengaduan ini tidak dipungut biaya. Mohon tidak memberikan imbalan"
        in lines
    )
    assert (
        "(ke porong@sidoarjokab.go.id) dengan tetap mencantumkan [PRG-2026-000123-4]"
        in lines
    )
    assert "Telepon : (031) 8851003" in lines
    assert "Laman   : https://kecporong.sidoarjokab.go.id" in lines
    assert "di https://www.lapor.go.id." in lines
    assert (
        lines[-1] == "Email ini dikirim secara otomatis oleh sistem Layanan Pengaduan."
    )


def test_acknowledgement_html_escapes_fields_and_keeps_key_facts(
    renderer: Renderer,
) -> None:
    rendered = renderer.render("citizen/acknowledgement", acknowledgement_fields())

    assert "Lampu &lt;PJU&gt; mati &amp; gelap" in rendered.html
    assert "Lampu <PJU>" not in rendered.html
    assert "<strong>Jumat, 4 Desember 2026 pukul 08.00 WIB</strong>" in rendered.html
    assert "<strong>tidak dipungut biaya</strong>" in rendered.html
    assert "<strong>[PRG-2026-000123-4]</strong>" in rendered.html
    assert 'href="https://www.lapor.go.id"' in rendered.html


@pytest.mark.parametrize("missing", [True, False])
def test_acknowledgement_asks_for_identity_only_when_missing(
    renderer: Renderer, missing: bool
) -> None:
    fields = acknowledgement_fields(identity_missing=missing)

    rendered = renderer.render("citizen/acknowledgement", fields)

    lines = rendered.text.splitlines()
    assert ("KELENGKAPAN IDENTITAS" in lines) is missing
    assert ("- nama lengkap;" in lines) is missing
    assert ("- NIK atau foto KTP." in lines) is missing
    assert ("Kelengkapan identitas" in rendered.html) is missing


def test_acknowledgement_names_the_attachments_it_could_not_keep(
    renderer: Renderer,
) -> None:
    fields = acknowledgement_fields(
        attachments_not_kept=["video<1>.mp4", "foto.jpg"], attachment_limit=512 * 1024
    )

    rendered = renderer.render("citizen/acknowledgement", fields)

    text = rendered.text
    start = text.index("LAMPIRAN TIDAK TERSIMPAN")
    assert text[start : text.index("\n\n", start)].splitlines() == [
        "LAMPIRAN TIDAK TERSIMPAN",
        "Lampiran berikut melebihi batas ukuran 512,0 KB sehingga",
        "tidak kami simpan:",
        "- video<1>.mp4",
        "- foto.jpg",
        "Mohon kirim ulang dengan membalas email ini, dalam ukuran lebih kecil",
        "(misalnya foto yang diperkecil) atau dibagi ke beberapa email.",
    ]
    assert "<strong>video&lt;1&gt;.mp4</strong>, <strong>foto.jpg</strong>." in (
        rendered.html
    )
    plain = renderer.render("citizen/acknowledgement", acknowledgement_fields())
    assert "LAMPIRAN TIDAK TERSIMPAN" not in plain.text
    assert "Lampiran tidak tersimpan" not in plain.html


def test_acknowledgement_without_a_name_greets_bapak_ibu(renderer: Renderer) -> None:
    fields = acknowledgement_fields(complainant_name="", response_hours=48)

    rendered = renderer.render("citizen/acknowledgement", fields)

    lines = rendered.text.splitlines()
    assert lines[0] == "Yth. Bapak/Ibu,"
    assert (
        "Pengaduan ini akan kami tanggapi dalam waktu 2x24 jam, paling lambat" in lines
    )
    assert '<p style="margin:0 0 16px 0;">Yth. Bapak/Ibu,</p>' in rendered.html


def test_acknowledgement_uses_the_renderer_zone() -> None:
    renderer = Renderer(default_templates_dir(), timezone="Asia/Makassar")

    rendered = renderer.render("citizen/acknowledgement", acknowledgement_fields())

    assert "Jumat, 4 Desember 2026 pukul 09.00 WITA." in rendered.text.splitlines()


def test_new_ticket_text_lists_facts_keywords_and_attachments(
    renderer: Renderer,
) -> None:
    rendered = renderer.render("staff/new_ticket", new_ticket_fields())

    lines = rendered.text.splitlines()
    assert lines[0] == "PENGADUAN BARU untuk Seksi Perekonomian dan Pembangunan"
    assert "Nomor pengaduan : PRG-2026-000123-4" in lines
    assert "Unit            : Seksi Perekonomian dan Pembangunan (ekbang)" in lines
    assert "Pengadu         : Budi Santoso <budi.santoso@example.com>" in lines
    assert "Batas tanggapan : Jumat, 4 Desember 2026 pukul 08.00 WIB" in lines
    assert "Kata kunci      : pju, lampu jalan" in lines
    assert "Identitas       : lengkap" in lines
    assert "[PRG-2026-000123-4] pada subjek." in lines
    assert "Lampu mati <script>alert('x')</script>" in lines
    assert "Lampiran (2):" in lines
    assert "- pju.jpg (12,5 KB)" in lines
    assert "- bukti<1>.exe (4 B), dikarantina: jenis berkas tidak diizinkan" in lines


def test_new_ticket_without_keywords_goes_to_the_general_desk(
    renderer: Renderer,
) -> None:
    fields = new_ticket_fields(
        matched_keywords=[], identity_missing=True, attachments=[], complainant_name=""
    )

    rendered = renderer.render("staff/new_ticket", fields)

    lines = rendered.text.splitlines()
    assert "Kata kunci      : tidak ada kata kunci cocok, masuk ke meja umum" in lines
    assert (
        "Identitas       : BELUM LENGKAP (perlu nama lengkap, alamat, NIK/foto KTP)"
        in lines
    )
    assert "Pengadu         : (tanpa nama) <budi.santoso@example.com>" in lines
    assert "Lampiran: tidak ada" in lines
    assert "tidak ada kata kunci cocok, masuk ke meja umum" in rendered.html
    assert "Identitas belum lengkap." in rendered.html


@pytest.mark.parametrize("name", ["staff/new_ticket", "staff/follow_up"])
def test_citizen_text_is_escaped_in_html_with_its_line_breaks(
    renderer: Renderer, name: str
) -> None:
    rendered = renderer.render(name, FIELDS[name]())

    assert (
        "Lampu mati &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;<br>\n"
        "sudah tiga malam &amp; gelap." in rendered.html
    )
    assert "<script>" not in rendered.html


def test_new_ticket_html_escapes_attachment_names(renderer: Renderer) -> None:
    rendered = renderer.render("staff/new_ticket", new_ticket_fields())

    assert "<li>bukti&lt;1&gt;.exe (4 B) <span" in rendered.html
    assert "Budi Santoso &lt;budi.santoso@example.com&gt;" in rendered.html


def test_follow_up_text_states_status_and_reference(renderer: Renderer) -> None:
    rendered = renderer.render("staff/follow_up", follow_up_fields())

    lines = rendered.text.splitlines()
    assert lines[0] == "TAMBAHAN DARI PELAPOR untuk Seksi Perekonomian dan Pembangunan"
    assert "Budi Santoso mengirim keterangan tambahan untuk pengaduan" in lines
    assert "Status tiket    : diproses" in lines
    assert "Perihal         : Re: Lampu PJU mati" in lines
    assert "Tambahan masuk  : Kamis, 3 Desember 2026 pukul 08.00 WIB" in lines
    assert "Batas tanggapan : Jumat, 4 Desember 2026 pukul 08.00 WIB" in lines
    assert "Lampiran: tidak ada" in lines
    assert "[PRG-2026-000123-4] pada subjek." in lines


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("received", "Status tiket    : diterima"),
        ("in_progress", "Status tiket    : sedang ditangani"),
        ("answered", "Status tiket    : sudah dijawab"),
        ("rejected", "Status tiket    : ditolak"),
        ("ditunda", "Status tiket    : ditunda"),
    ],
)
def test_follow_up_shows_the_ticket_state_in_indonesian(
    renderer: Renderer, status: str, expected: str
) -> None:
    rendered = renderer.render("staff/follow_up", follow_up_fields(status=status))

    assert expected in rendered.text.splitlines()
    assert expected.split(": ")[1] + "</td>" in rendered.html


@pytest.mark.parametrize("template", ["staff/follow_up", "staff/new_ticket"])
def test_a_message_with_no_new_text_says_so(renderer: Renderer, template: str) -> None:
    rendered = renderer.render(template, FIELDS[template](text=""))

    rule = "-" * 60
    assert rendered.text.split(rule)[1] == "\n(tanpa teks baru)\n"
    assert "(tanpa teks baru)" in rendered.html


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_a_missing_field_raises_with_the_template_name(
    renderer: Renderer, name: str
) -> None:
    fields = FIELDS[name]()
    del fields["reference"]

    with pytest.raises(MessageError) as caught:
        renderer.render(name, fields)

    assert f"template {name} " in str(caught.value)
    assert "'reference' is undefined" in str(caught.value)


def test_a_missing_template_raises_with_its_name(renderer: Renderer) -> None:
    with pytest.raises(MessageError) as caught:
        renderer.render("citizen/no_such_letter", acknowledgement_fields())

    assert str(caught.value) == (
        "template citizen/no_such_letter: citizen/no_such_letter.txt.j2 not found"
    )


def test_a_naive_datetime_raises_with_the_template_name(renderer: Renderer) -> None:
    fields = acknowledgement_fields(due_at=datetime(2026, 12, 4, 8, 0))

    with pytest.raises(MessageError) as caught:
        renderer.render("citizen/acknowledgement", fields)

    assert str(caught.value) == (
        "template citizen/acknowledgement (citizen/acknowledgement.txt.j2): "
        "format_wib needs a timezone-aware datetime"
    )


def test_templates_are_compiled_once(tmp_path: Path) -> None:
    shutil.copytree(default_templates_dir(), tmp_path / "templates")
    renderer = Renderer(tmp_path / "templates")
    first = renderer.render("staff/follow_up", follow_up_fields())
    changed = tmp_path / "templates" / "staff" / "follow_up.txt.j2"
    changed.write_text("changed {{ reference }}\n", encoding="utf-8")

    second = renderer.render("staff/follow_up", follow_up_fields())

    assert second == first
    assert Renderer(tmp_path / "templates").render(
        "staff/follow_up", follow_up_fields()
    ).text == ("changed PRG-2026-000123-4\n")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            datetime(2026, 12, 3, 16, 59, tzinfo=UTC),
            "Kamis, 3 Desember 2026 pukul 23.59 WIB",
        ),
        (
            datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
            "Jumat, 4 Desember 2026 pukul 00.00 WIB",
        ),
        (
            datetime(2026, 12, 31, 17, 30, tzinfo=UTC),
            "Jumat, 1 Januari 2027 pukul 00.30 WIB",
        ),
        (
            datetime(2026, 12, 3, 20, 41, tzinfo=ZoneInfo("Asia/Jakarta")),
            "Kamis, 3 Desember 2026 pukul 20.41 WIB",
        ),
    ],
)
def test_format_wib_converts_utc_across_midnight(
    moment: datetime, expected: str
) -> None:
    assert format_wib(moment) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (16, "Senin, 16 November 2026 pukul 09.05 WIB"),
        (17, "Selasa, 17 November 2026 pukul 09.05 WIB"),
        (18, "Rabu, 18 November 2026 pukul 09.05 WIB"),
        (19, "Kamis, 19 November 2026 pukul 09.05 WIB"),
        (20, "Jumat, 20 November 2026 pukul 09.05 WIB"),
        (21, "Sabtu, 21 November 2026 pukul 09.05 WIB"),
        (22, "Minggu, 22 November 2026 pukul 09.05 WIB"),
    ],
)
def test_format_wib_names_every_day(day: int, expected: str) -> None:
    assert format_wib(datetime(2026, 11, day, 2, 5, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (1, "Kamis, 15 Januari 2026 pukul 10.00 WIB"),
        (2, "Minggu, 15 Februari 2026 pukul 10.00 WIB"),
        (3, "Minggu, 15 Maret 2026 pukul 10.00 WIB"),
        (4, "Rabu, 15 April 2026 pukul 10.00 WIB"),
        (5, "Jumat, 15 Mei 2026 pukul 10.00 WIB"),
        (6, "Senin, 15 Juni 2026 pukul 10.00 WIB"),
        (7, "Rabu, 15 Juli 2026 pukul 10.00 WIB"),
        (8, "Sabtu, 15 Agustus 2026 pukul 10.00 WIB"),
        (9, "Selasa, 15 September 2026 pukul 10.00 WIB"),
        (10, "Kamis, 15 Oktober 2026 pukul 10.00 WIB"),
        (11, "Minggu, 15 November 2026 pukul 10.00 WIB"),
        (12, "Selasa, 15 Desember 2026 pukul 10.00 WIB"),
    ],
)
def test_format_wib_names_every_month(month: int, expected: str) -> None:
    assert format_wib(datetime(2026, month, 15, 3, 0, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Asia/Pontianak", "Kamis, 3 Desember 2026 pukul 08.00 WIB"),
        ("Asia/Makassar", "Kamis, 3 Desember 2026 pukul 09.00 WITA"),
        ("Asia/Jayapura", "Kamis, 3 Desember 2026 pukul 10.00 WIT"),
        ("Europe/Amsterdam", "Kamis, 3 Desember 2026 pukul 02.00 CET"),
        ("UTC", "Kamis, 3 Desember 2026 pukul 01.00 UTC"),
    ],
)
def test_format_wib_names_other_zones(zone: str, expected: str) -> None:
    assert format_wib(RECEIVED, zone) == expected


def test_format_wib_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_wib(datetime(2026, 12, 3, 8, 0))


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(days=1, hours=2), "1 hari 2 jam"),
        (timedelta(days=1, hours=2, minutes=35), "1 hari 2 jam"),
        (timedelta(minutes=35), "35 menit"),
        (timedelta(hours=3, minutes=5, seconds=59), "3 jam 5 menit"),
        (timedelta(days=2, minutes=10), "2 hari 10 menit"),
        (timedelta(hours=24), "1 hari"),
        (timedelta(hours=5), "5 jam"),
        (timedelta(seconds=59), "kurang dari 1 menit"),
        (timedelta(0), "kurang dari 1 menit"),
        (timedelta(hours=-3, minutes=-20), "3 jam 20 menit"),
    ],
)
def test_format_duration(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected


@pytest.mark.parametrize(
    ("hours", "expected"), [(24, "1x24 jam"), (48, "2x24 jam"), (36, "36 jam")]
)
def test_format_response_window(hours: int, expected: str) -> None:
    assert format_response_window(hours) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1,0 KB"),
        (12800, "12,5 KB"),
        (5 * 1024 * 1024, "5,0 MB"),
        (3 * 1024**3, "3,0 GB"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_status_labels_cover_every_ticket_state() -> None:
    assert [status_label(state) for state in TicketStatus] == [
        "diterima",
        "sedang ditangani",
        "sudah dijawab",
        "ditolak",
    ]


def test_acknowledgement_in_working_hours_mode_names_working_hours(
    renderer: Renderer,
) -> None:
    fields = acknowledgement_fields(working_hours=True)

    text = renderer.render("citizen/acknowledgement", fields).text

    assert "akan kami tanggapi dalam waktu 24 jam kerja, paling lambat" in text
    assert "1x24" not in text


@pytest.mark.parametrize(
    ("action", "detail", "shown"),
    [
        ("status", "received -> in_progress", "diterima -> sedang ditangani"),
        (
            "created",
            "unit ekbang (keywords: pju, lampu)",
            "unit ekbang (kata kunci: pju, lampu)",
        ),
        ("follow_up", "via signed-id", "membalas surat dari sistem"),
        ("follow_up", "via subject", "nomor pengaduan di subjek"),
        ("reopened", "complainant replied", "pengadu membalas"),
        (
            "thanked",
            "ticket stays closed",
            "pengadu berterima kasih; tiket tetap selesai",
        ),
        ("linked", "continues PRG-2026-000001-5", "lanjutan dari PRG-2026-000001-5"),
        ("linked", "mentions PRG-2026-000001-5", "menyebut PRG-2026-000001-5"),
        (
            "linked",
            "answers a letter of PRG-2026-000001-5 from another address",
            "membalas surat PRG-2026-000001-5 dari alamat lain",
        ),
        (
            "follow_up",
            "via subject, check digit corrected",
            "nomor pengaduan di subjek (digit terakhir dibetulkan)",
        ),
        ("identity", "identity (NIK or KTP) received", "identitas (NIK/KTP) diterima"),
        (
            "identity",
            "identity given on PRG-2026-000001-5",
            "identitas sudah diberikan pada PRG-2026-000001-5",
        ),
        ("draft_approved", "approved by Camat Porong", "disetujui oleh Camat Porong"),
        (
            "escalation",
            "step 2: sekcam, 1 recipients (no staff with role kasubag_umum)",
            "tahap 2: sekcam, 1 penerima (tidak ada staf dengan jabatan kasubag_umum)",
        ),
        ("reminder", "unit ekbang: 2 recipients", "unit ekbang: 2 penerima"),
        ("reminder", "approver sekcam: 1 recipients", "penyetuju sekcam: 1 penerima"),
        (
            "note",
            "via subject (keywords: x) 2 recipients",
            "via subject (keywords: x) 2 recipients",
        ),
    ],
)
def test_history_details_are_shown_in_indonesian(
    action: str, detail: str, shown: str
) -> None:
    assert history_detail(detail, action) == shown


@pytest.mark.parametrize(
    ("span", "shown"),
    [
        (timedelta(hours=24), "24 jam waktu kerja"),
        (timedelta(hours=2, minutes=30), "2 jam 30 menit waktu kerja"),
        (timedelta(minutes=45), "45 menit waktu kerja"),
        (timedelta(seconds=20), "kurang dari 1 menit waktu kerja"),
    ],
)
def test_office_time_is_told_in_hours_never_days(span: timedelta, shown: str) -> None:
    # Trial 30: 24 office hours (three working days) read "1 hari waktu kerja".
    assert format_office_duration(span) == shown
