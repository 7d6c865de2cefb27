"""End to end through the real CLI: staff work tickets by replying with #tags.

A complaint goes into Dovecot, ``mailbot poll --once`` and ``mailbot send`` run
as processes, staff replies are appended the way Gmail and Outlook write them,
and everything the aiosmtpd sink received is checked.
"""

from __future__ import annotations

import email
import json
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from clirun import Inbox, account_toml, mailbot, write_config
from dovecot import DovecotServer, ImapUser
from smtpsink import SmtpSink

from mailbot.references import Reference

DATA = Path(__file__).parent / "data"
EKBANG_STAFF = "ekbang.staf@porong.example.go.id"
OPERATOR = "operator@porong.example.go.id"
BUDI = "budi.santoso@example.com"
DEWI = "dewi.lestari@example.com"
OFFICE = "porong@sidoarjokab.go.id"
TRUSTED = "mx.porong.example.go.id"
LAMP_ROUTED = "unit ekbang (keywords: pju, lampu, gelap, pasar)"

GMAIL_ANSWER = (
    "#tanggapan\n"
    "Lampu PJU di Jl. Raya Porong sudah diganti oleh petugas pada Rabu pagi.\n"
    "Terima kasih atas laporannya.\n"
    "\n"
    "-- \n"
    "Hendra Wijaya\n"
    "Seksi Perekonomian dan Pembangunan\n"
    "\n"
    "Pada tanggal Rab, 2 Des 2026 pukul 08.01 Layanan Pengaduan Kecamatan Porong <\n"
    "porong@sidoarjokab.go.id> menulis:\n"
    "\n"
    "> PENGADUAN BARU untuk Seksi Perekonomian dan Pembangunan\n"
    ">\n"
    "> Mohon pengaduan ini ditanggapi paling lambat Kamis.\n"
)
OUTLOOK_ANSWER = (
    "#balas Saluran di Perumahan Tanggulangin sudah dikeruk hari ini.\n"
    "Mohon kabari kami bila air masih menggenang.\n"
    "\n"
    "Dikirim dari Outlook untuk Android\n"
    "________________________________\n"
    "Dari: Layanan Pengaduan Kecamatan Porong <porong@sidoarjokab.go.id>\n"
    "Dikirim: Rabu, 02 Desember 2026 08.01\n"
    "Kepada: ekbang.staf@porong.example.go.id\n"
    "Perihal: Pengaduan baru\n"
    "\n"
    "PENGADUAN BARU untuk Seksi Perekonomian dan Pembangunan\n"
)


def _reference(seq: int) -> str:
    year = datetime.now(ZoneInfo("Asia/Jakarta")).year
    return str(Reference("PRG", year, seq))


def _parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=default))


def _text(raw: bytes) -> str:
    part = _parse(raw).get_body(preferencelist=("plain",))
    assert part is not None
    return cast(str, part.get_content())


def _between_rules(text: str) -> str:
    rule = "-" * 60
    return text.split(rule)[1].strip("\n")


def _staff_reply(
    sender: str, notice: EmailMessage, body: str, number: int, auth: str = ""
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = OFFICE
    message["Subject"] = f"Re: {notice['Subject']}"
    message["Date"] = "Wed, 02 Dec 2026 09:12:44 +0700"
    message["Message-ID"] = f"<staff-{number}@porong.example.go.id>"
    message["In-Reply-To"] = notice["Message-ID"]
    message["References"] = notice["Message-ID"]
    if auth:
        message["Authentication-Results"] = auth
    message.set_content(body)
    return message.as_bytes()


class Office:
    """One inbox, one SMTP sink and the CLI, as a test drives them."""

    def __init__(
        self, config: Path, inbox: Inbox, dovecot: DovecotServer, sink: SmtpSink
    ) -> None:
        self.config, self.inbox, self.dovecot, self.sink = config, inbox, dovecot, sink

    def deliver(self, *messages: bytes) -> list[str]:
        for raw in messages:
            self.dovecot.append(self.inbox.user, raw)
        polled = mailbot(self.config, "poll", "--once").stdout.splitlines()
        mailbot(self.config, "send")
        return polled

    def complaints(self, *names: str) -> None:
        self.deliver(*((DATA / name).read_bytes() for name in names))

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [_parse(m.raw) for m in self.sink.messages if address in m.rcpt_tos]

    def show(self, reference: str) -> dict[str, Any]:
        shown = mailbot(self.config, "tickets", "show", reference, "--json")
        return cast(dict[str, Any], json.loads(shown.stdout))


def _office(
    tmp_path: Path,
    dovecot: DovecotServer,
    user: ImapUser,
    sink: SmtpSink,
    extra: str = "",
) -> Office:
    inbox = Inbox("dinas", user, OFFICE)
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, inbox)],
        smtp=sink,
        extra=extra,
    )
    return Office(config, inbox, dovecot, sink)


@pytest.fixture
def office(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    smtp_sink: SmtpSink,
) -> Office:
    return _office(tmp_path, dovecot, imap_users(), smtp_sink)


def test_gmail_and_outlook_answers_reach_the_complainant_as_new_text_only(
    office: Office,
) -> None:
    office.complaints("intake-complaint-street-light.eml", "intake-complaint-flood.eml")
    lamp, flood = office.sent_to("ekbang.porong@example.go.id")

    polled = office.deliver(
        _staff_reply(OPERATOR, lamp, "#verifikasi\n", 1),
        _staff_reply(EKBANG_STAFF, lamp, GMAIL_ANSWER, 2),
        _staff_reply(EKBANG_STAFF, flood, OUTLOOK_ANSWER, 3),
    )
    view = office.show(_reference(1))

    assert polled == ["dinas: 3 fetched (3 staff)"]
    budi_response = office.sent_to(BUDI)[-1]
    dewi_response = office.sent_to(DEWI)[-1]
    assert budi_response["Subject"] == (
        f"[{_reference(1)}] Tanggapan atas pengaduan: Lampu PJU mati di Jl. Raya Porong"
    )
    assert _between_rules(_text(budi_response.as_bytes())) == (
        "Lampu PJU di Jl. Raya Porong sudah diganti oleh petugas pada Rabu pagi.\n"
        "Terima kasih atas laporannya."
    )
    assert _between_rules(_text(dewi_response.as_bytes())) == (
        "Saluran di Perumahan Tanggulangin sudah dikeruk hari ini.\n"
        "Mohon kabari kami bila air masih menggenang."
    )
    assert budi_response["In-Reply-To"] == "<pju-20261201@example.com>"
    html = budi_response.get_body(preferencelist=("html",))
    assert html is not None
    assert "sudah diganti oleh petugas pada Rabu pagi." in html.get_content()
    assert view["status"] == "answered"
    assert view["answered_at"] == view["history"][-1]["at"]
    assert [(e["actor"], e["action"], e["detail"]) for e in view["history"]] == [
        ("mailbot", "created", LAMP_ROUTED),
        (OPERATOR, "verified", "verified by Operator CS (operator)"),
        (OPERATOR, "status", "received -> in_progress"),
        (EKBANG_STAFF, "answered", "final response sent by Staf Ekbang"),
        (EKBANG_STAFF, "status", "in_progress -> answered"),
    ]
    assert all(datetime.fromisoformat(e["at"]).tzinfo for e in view["history"])
    assert [(m["direction"], m["kind"], m["from"]) for m in view["messages"]] == [
        ("in", "complaint", BUDI),
        ("out", "acknowledgement", OFFICE),
        ("out", "unit_notification", OFFICE),
        ("out", "unit_notification", OFFICE),
        ("in", "staff_reply", OPERATOR),
        ("in", "staff_reply", EKBANG_STAFF),
        ("out", "final_response", OFFICE),
    ]
    assert view["messages"][5]["text"] == GMAIL_ANSWER.split("\n\n-- ", maxsplit=1)[0]


def test_notes_never_reach_the_complainant_and_forwarding_is_for_supervisors(
    office: Office,
) -> None:
    office.complaints("intake-complaint-street-light.eml")
    (notice,) = office.sent_to("ekbang.porong@example.go.id")
    note = "#catatan kabel putus, PLN sudah dihubungi\n\n-- \nHendra\n"
    untagged = "Sudah kami cek, besok diganti.\n\nPada Rab, 2 Des 2026 menulis:\n> x\n"
    forward = "#disposisi trantib\nSoal keamanan.\n"

    polled = office.deliver(
        _staff_reply(EKBANG_STAFF, notice, note, 1),
        _staff_reply(EKBANG_STAFF, notice, untagged, 2),
        _staff_reply(EKBANG_STAFF, notice, "#teruskan trantib\n", 3),
        _staff_reply(OPERATOR, notice, forward, 4),
    )
    view = office.show(_reference(1))

    assert polled == ["dinas: 4 fetched (4 staff)"]
    assert [m.rcpt_tos for m in office.sink.messages] == [
        (BUDI,),
        ("ekbang.porong@example.go.id",),
        (EKBANG_STAFF,),
        (EKBANG_STAFF,),
        (EKBANG_STAFF,),
        ("ekbang.porong@example.go.id",),
        (EKBANG_STAFF,),
        ("trantib.porong@example.go.id",),
        (OPERATOR,),
    ]
    assert b"kabel putus" not in b"".join(m.raw for m in office.sink.messages)
    _, hint, refusal, moved = (
        _text(m.as_bytes()) for m in office.sent_to(EKBANG_STAFF)
    )
    assert "dipindahkan ke Seksi Ketenteraman" in " ".join(moved.split())
    assert "TIDAK dikirim kepada pengadu" in " ".join(hint.split())
    assert "Perintah tidak dijalankan; tiket tidak berubah." in refusal
    assert "#teruskan: hanya untuk operator, Kasubag Umum, Sekcam atau Camat." in (
        refusal
    )
    (forwarded,) = office.sent_to("trantib.porong@example.go.id")
    assert forwarded["Subject"] == (
        f"[{_reference(1)}] Disposisi pengaduan: Lampu PJU mati di Jl. Raya Porong"
    )
    assert "Catatan disposisi: Soal keamanan." in _text(forwarded.as_bytes())
    assert (view["status"], view["unit"]) == ("in_progress", "trantib")
    assert [(e["actor"], e["action"], e["detail"]) for e in view["history"]] == [
        ("mailbot", "created", LAMP_ROUTED),
        (EKBANG_STAFF, "note", "kabel putus, PLN sudah dihubungi"),
        (EKBANG_STAFF, "status", "received -> in_progress"),
        (EKBANG_STAFF, "note", "Sudah kami cek, besok diganti."),
        (
            EKBANG_STAFF,
            "command_refused",
            "#teruskan: hanya untuk operator, Kasubag Umum, Sekcam atau Camat.",
        ),
        (OPERATOR, "forwarded", "ekbang -> trantib: Soal keamanan."),
    ]


def _answered(office: Office) -> EmailMessage:
    office.complaints("intake-complaint-street-light.eml")
    (notice,) = office.sent_to("ekbang.porong@example.go.id")
    office.deliver(_staff_reply(EKBANG_STAFF, notice, GMAIL_ANSWER, 1))
    return office.sent_to(BUDI)[-1]


def _citizen_reply(response: EmailMessage) -> bytes:
    message = EmailMessage()
    message["From"] = f"Budi Santoso <{BUDI}>"
    message["To"] = OFFICE
    message["Subject"] = f"Re: {response['Subject']}"
    message["Message-ID"] = "<budi-not-satisfied@example.com>"
    message["In-Reply-To"] = response["Message-ID"]
    message.set_content(
        "Lampunya mati lagi tadi malam.\n\nDikirim dari iPhone saya\n\n"
        "> Pada 2 Des 2026, pukul 10.30, Layanan Pengaduan <porong@sidoarjokab.go.id>"
        " menulis:\n> Lampu sudah diganti.\n"
    )
    return message.as_bytes()


def test_a_reply_within_the_window_reopens_the_ticket(office: Office) -> None:
    response = _answered(office)

    polled = office.deliver(_citizen_reply(response))

    assert polled == ["dinas: 1 fetched (1 follow_up)"]
    notice = office.sent_to("ekbang.porong@example.go.id")[-1]
    assert notice["Subject"] == (
        f"[{_reference(1)}] Dibuka kembali oleh pelapor: "
        "Lampu PJU mati di Jl. Raya Porong"
    )
    assert _between_rules(_text(notice.as_bytes())) == "Lampunya mati lagi tadi malam."
    view = office.show(_reference(1))
    assert view["status"] == "in_progress"
    assert [e["action"] for e in view["history"][-3:]] == [
        "follow_up",
        "status",
        "reopened",
    ]


def test_a_reply_after_the_window_opens_a_linked_ticket(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    office = _office(
        tmp_path, dovecot, imap_user, smtp_sink, "[workflow]\nreopen_days = 0\n"
    )
    response = _answered(office)

    polled = office.deliver(_citizen_reply(response))

    assert polled == ["dinas: 1 fetched (1 ticket)"]
    old, new = office.show(_reference(1)), office.show(_reference(2))
    assert old["status"] == "answered"
    assert old["history"][-1]["detail"] == f"continued in {_reference(2)}"
    assert new["history"][-1]["detail"] == f"continues {_reference(1)}"
    assert new["messages"][0]["text"] == "Lampunya mati lagi tadi malam."


def test_a_forged_staff_sender_changes_nothing(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    office = _office(
        tmp_path,
        dovecot,
        imap_user,
        smtp_sink,
        f'[security]\ntrusted_authserv_id = "{TRUSTED}"\n',
    )
    office.complaints("intake-complaint-street-light.eml")
    (notice,) = office.sent_to("ekbang.porong@example.go.id")
    failing = f"{TRUSTED}; dkim=fail header.d=porong.example.go.id; spf=softfail"
    foreign = "mx.attacker.example; dkim=pass header.d=porong.example.go.id"
    genuine = f"{TRUSTED}; dkim=pass (good) header.d=porong.example.go.id"

    polled = office.deliver(
        _staff_reply(EKBANG_STAFF, notice, GMAIL_ANSWER, 1, failing),
        _staff_reply(EKBANG_STAFF, notice, GMAIL_ANSWER, 2, foreign),
        _staff_reply(EKBANG_STAFF, notice, "#catatan asli\n", 3, genuine),
    )
    view = office.show(_reference(1))

    assert polled == ["dinas: 3 fetched (2 forged, 1 staff)"]
    # The address each forgery claims is told its commands did not run.
    assert [m.rcpt_tos for m in office.sink.messages] == [
        (BUDI,),
        ("ekbang.porong@example.go.id",),
        (EKBANG_STAFF,),
        (EKBANG_STAFF,),
        (EKBANG_STAFF,),
    ]
    told = office.sink.messages[3].raw
    assert b"Subject: Pesan sistem: pengirim email tidak dapat dipastikan" in told
    assert [(e["action"], e["detail"]) for e in view["history"][1:]] == [
        ("forged_sender", "no aligned DKIM, SPF or DMARC pass; evidence: none"),
        (
            "forged_sender",
            "topmost Authentication-Results is not our server's; evidence: none",
        ),
        ("note", "asli"),
        ("status", "received -> in_progress"),
    ]
    assert view["answered_at"] is None
