"""Staff desk: roles, refusals, status and help, approval and the reopen window.

Runs intake in process on a real SQLite database with a fake clock; letters are
checked in the outbox, where they wait for delivery.
"""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.commands import COMMANDS
from mailbot.config import parse_settings
from mailbot.digest import compute_digest
from mailbot.filing import NOTICES_PER_DAY
from mailbot.inbound import Origin, Outcome
from mailbot.models import Event, OutboxItem, Ticket
from mailbot.service import sla_watch
from mailbot.views import forged_attempts

WIB = ZoneInfo("Asia/Jakarta")
DATA = Path(__file__).parent / "data"
OFFICE = "porong@sidoarjokab.go.id"
BUDI = "budi.santoso@example.com"
OPERATOR = "operator@porong.example.go.id"
EKBANG = "ekbang.staf@porong.example.go.id"
KESOS = "kesos.staf@porong.example.go.id"
SEKCAM = "sekcam@porong.example.go.id"
ORIGIN = Origin("dinas", OFFICE, "dinas:test")
# The complaint every desk starts from brings the acknowledgement and a notice
# to the ekbang mailbox and to Staf Ekbang.
AFTER_INTAKE = 3
STAFF = f"""
[[staff]]
email = "{OPERATOR}"
name = "Operator CS"
role = "operator"

[[staff]]
email = "{EKBANG}"
name = "Staf Ekbang"
unit = "ekbang"

[[staff]]
email = "{KESOS}"
name = "Staf Kesos"
unit = "kesos"

[[staff]]
email = "{SEKCAM}"
name = "Sekretaris Camat"
role = "sekcam"
"""


class FakeClock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


class Desk:
    """An app in process, with helpers to write staff replies to one ticket."""

    def __init__(self, app: App, clock: FakeClock) -> None:
        self.app, self.clock = app, clock
        self.count = 0

    def receive(self, raw: bytes, origin: Origin = ORIGIN) -> Outcome:
        return self.app.intake.receive(raw, origin).outcome

    def letters(self) -> list[tuple[str, tuple[str, ...]]]:
        with self.app.sessions() as session:
            items = session.scalars(select(OutboxItem).order_by(OutboxItem.id))
            return [(i.kind, tuple(i.recipients)) for i in items]

    def last_text(self, kind: str | None = None) -> str:
        """The plain text of the newest letter, or of the newest of ``kind``."""
        return self.texts(kind)[-1]

    def texts(self, kind: str | None = None) -> list[str]:
        """The plain text of each letter, or of each of ``kind``, on one line."""
        with self.app.sessions() as session:
            items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        return [_plain(i.raw) for i in items if kind is None or i.kind == kind]

    def message_ids(self, kind: str) -> list[str]:
        with self.app.sessions() as session:
            query = select(OutboxItem.message_id).where(OutboxItem.kind == kind)
            return list(session.scalars(query.order_by(OutboxItem.id)))

    def ticket(self, seq: int = 1) -> Ticket:
        with self.app.sessions() as session:
            tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
            return tickets[seq - 1]

    def history(self) -> list[tuple[str, str, str]]:
        with self.app.sessions() as session:
            ticket = session.scalars(select(Ticket)).first()
            assert ticket is not None
            return [(e.actor, e.action, e.detail) for e in ticket.events]

    def events(self) -> list[tuple[str, str]]:
        with self.app.sessions() as session:
            ticket = session.scalars(select(Ticket)).first()
            assert ticket is not None
            return [(e.action, e.detail) for e in ticket.events]

    def actions(self) -> list[tuple[str, str]]:
        with self.app.sessions() as session:
            ticket = session.scalars(select(Ticket)).first()
            assert ticket is not None
            return [(e.actor, e.action) for e in ticket.events]

    def reply(
        self,
        sender: str,
        body: str,
        in_reply_to: str = "",
        *,
        results: str = "",
        origin: Origin = ORIGIN,
    ) -> Outcome:
        self.count += 1
        self.clock.moment += timedelta(minutes=5)
        message = EmailMessage()
        if results:
            message["Authentication-Results"] = results
        message["From"] = sender
        message["To"] = OFFICE
        message["Subject"] = f"Re: [{self.ticket().reference}] Pengaduan baru"
        message["Message-ID"] = f"<reply-{self.count}@example.org>"
        if in_reply_to:
            message["In-Reply-To"] = f"<{in_reply_to}>"
        message.set_content(body)
        # Long Message-IDs stay on one line, as mail clients write them.
        raw = message.as_bytes(policy=default.clone(max_line_length=998))
        return self.receive(raw, origin)


def _plain(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    return " ".join(plain.get_content().split())


@pytest.fixture
def make_desk(tmp_path: Path) -> Callable[[str], Desk]:
    def make(extra: str = "") -> Desk:
        text = f'[storage]\ndata_dir = "{tmp_path}"\n{STAFF}{extra}'
        clock = FakeClock()
        app = App.build(parse_settings(text, "test"), clock)
        desk = Desk(app, clock)
        desk.receive((DATA / "intake-complaint-street-light.eml").read_bytes())
        return desk

    return make


@pytest.fixture
def desk(make_desk: Callable[[str], Desk]) -> Desk:
    return make_desk("")


def test_a_new_ticket_is_told_to_the_unit_mailbox_and_each_of_its_staff(
    desk: Desk,
) -> None:
    assert desk.letters() == [
        ("acknowledgement", (BUDI,)),
        ("unit_notification", ("ekbang.porong@example.go.id",)),
        ("unit_notification", (EKBANG,)),
    ]


def test_staff_of_another_unit_may_not_note_or_answer(desk: Desk) -> None:
    outcome = desk.reply(KESOS, "#catatan sudah dicek\n#tanggapan selesai")

    assert outcome == Outcome.STAFF
    assert desk.ticket().status == "received"
    assert desk.letters()[-1] == ("command_reply", (KESOS,))
    assert (
        "#catatan: hanya untuk staf unit yang menangani tiket ini atau pimpinan."
        in desk.last_text()
    )
    assert desk.actions() == [("mailbot", "created"), (KESOS, "command_refused")]


def test_an_unknown_tag_stops_every_command_of_the_reply(desk: Desk) -> None:
    desk.reply(EKBANG, "#tanggapan sudah diganti\n#tutup")

    assert desk.ticket().status == "received"
    assert [kind for kind, _ in desk.letters()] == [
        "acknowledgement",
        "unit_notification",
        "unit_notification",
        "command_reply",
    ]
    assert "Perintah #tutup tidak dikenal." in desk.last_text()


def test_only_supervisors_reject_and_a_rejected_ticket_takes_no_commands(
    desk: Desk,
) -> None:
    desk.reply(EKBANG, "#tolak bukan wewenang")
    desk.reply(OPERATOR, "#tolak Urusan PLN, bukan kecamatan.")
    desk.reply(EKBANG, "#tanggapan sudah")

    assert desk.ticket().status == "rejected"
    assert desk.letters()[AFTER_INTAKE:] == [
        ("command_reply", (EKBANG,)),
        ("rejection", (BUDI,)),
        ("command_reply", (EKBANG,)),
    ]
    assert "#tanggapan: tiket sudah ditolak." in desk.last_text()


def test_the_rejection_names_the_reason_and_sp4n_lapor(desk: Desk) -> None:
    desk.reply(OPERATOR, "#reject Urusan PLN, bukan kecamatan.")

    text = desk.last_text()
    assert "Urusan PLN, bukan kecamatan." in text
    assert "SP4N-LAPOR! di https://www.lapor.go.id" in text


def test_status_and_help_answer_the_sender_only(desk: Desk) -> None:
    desk.reply(EKBANG, "#status\n#bantuan")

    assert desk.letters()[-1] == ("command_reply", (EKBANG,))
    text = desk.last_text()
    assert "STATUS TIKET" in text
    assert "mailbot dibuat: unit ekbang (kata kunci: pju, lampu, gelap, pasar)" in text
    # Without [workflow] approval, #setuju and #revisi are not offered.
    assert [c.usage for c in COMMANDS if c.usage in text] == [
        c.usage for c in COMMANDS if c.name not in ("setuju", "revisi")
    ]
    assert desk.ticket().status == "received"


def test_a_unit_mailbox_acts_as_its_unit(desk: Desk) -> None:
    desk.reply("ekbang.porong@example.go.id", "#tanggapan Lampu sudah diganti.")

    assert desk.ticket().status == "answered"
    assert desk.letters()[-1] == ("final_response", (BUDI,))


def test_the_colon_sign_off_and_hashtags_of_staff_stay_out_of_the_answer(
    desk: Desk,
) -> None:
    desk.reply(
        EKBANG,
        "#Tanggapan: Lampu sudah diganti.\n\nSalam,\nHendra\nStaf Ekbang\n"
        "HP 0812-3456-7890\n#SidoarjoBersih #Porong",
    )

    text = desk.last_text("final_response")
    assert desk.ticket().status == "answered"
    assert desk.letters()[-2:] == [
        ("final_response", (BUDI,)),
        ("command_reply", (EKBANG,)),
    ]
    rule = "-" * 60
    assert text.split(rule)[1] == " Lampu sudah diganti. "
    assert "#" not in text
    # Trial 27: the system reply spoke of the signature only.
    assert (
        "Tanggapan telah dikirim kepada pengadu. Salam penutup dan tanda tangan "
        "Bapak/Ibu tidak disertakan"
    ) in desk.last_text()


def test_the_staffs_own_greeting_is_left_out_of_the_answer(desk: Desk) -> None:
    # Trial 30: "Yth. Bapak/Ibu Budi Santoso," was followed by "Yth. Bapak Budi,".
    desk.reply(EKBANG, "#tanggapan Yth. Bapak Budi,\n\nLampu sudah diganti.")

    text = desk.last_text("final_response")
    assert text.count("Yth.") == 1
    assert text.split("-" * 60)[1] == " Lampu sudah diganti. "
    assert "Sapaan pembuka Bapak/Ibu tidak disertakan" in desk.last_text()


def test_with_approval_a_unit_answer_waits_for_the_approver(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')

    desk.reply(EKBANG, "#tanggapan Lampu diganti minggu depan.")
    desk.reply(SEKCAM, "#revisi Sebutkan tanggal pastinya.")
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin, 7 Desember.")
    desk.reply(SEKCAM, "#setuju")

    assert [letter for letter in desk.letters()[AFTER_INTAKE:]] == [
        ("approval_request", (SEKCAM,)),
        ("command_reply", (EKBANG,)),
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
        ("command_reply", (SEKCAM,)),
        ("approval_request", (SEKCAM,)),
        ("command_reply", (EKBANG,)),
        ("final_response", (BUDI,)),
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
        ("command_reply", (SEKCAM,)),
    ]
    assert "Lampu diganti Senin, 7 Desember." in desk.last_text("final_response")
    request = desk.last_text("approval_request")
    assert "Isi pengaduan: ------" in request
    assert "Lampu PJU" in request.split("Isi pengaduan:")[1].split("Draf tanggapan:")[0]
    revised = desk.texts("unit_message")[0]
    assert revised.startswith("PESAN SISTEM untuk tiket")
    assert (
        "Draf yang dikembalikan: Lampu diganti minggu depan. Kirim #tanggapan baru "
        "dengan draf yang sudah diperbaiki." in revised
    )
    assert (
        "Draf dikembalikan kepada unit bersama catatan Bapak/Ibu; pengadu belum "
        "menerimanya." in desk.texts("command_reply")[1]
    )
    assert "Draf disetujui. Tanggapan telah dikirim kepada pengadu." in (
        desk.last_text()
    )
    assert (
        "Draf tanggapan disetujui oleh Sekretaris Camat. Tanggapan telah dikirim "
        "kepada pengadu." in desk.last_text("unit_message")
    )
    assert desk.ticket().status == "answered"
    assert [action for _, action in desk.actions()][-3:] == [
        "draft_approved",
        "answered",
        "status",
    ]


KASUBAG = "kasubag@porong.example.go.id"
CAMAT = "camat@porong.example.go.id"
UPPER_POSTS = f"""
[[staff]]
email = "{KASUBAG}"
name = "Kasubag Umum"
role = "kasubag_umum"

[[staff]]
email = "{CAMAT}"
name = "Camat Porong"
role = "camat"

[workflow]
approval = ["camat", "kasubag_umum", "sekcam"]
"""


def _escalated_to(desk: Desk, address: str) -> str:
    """Sweep until an escalation reaches ``address``; that letter's Message-ID."""
    watch = sla_watch(desk.app)
    for _ in range(3):
        desk.clock.moment += timedelta(days=2)
        watch.sweep(desk.clock.now())
        with desk.app.sessions() as session:
            found = session.scalars(
                select(OutboxItem.message_id).where(
                    OutboxItem.kind == "sla_escalation",
                    OutboxItem.recipients == [address],
                )
            ).first()
        if found is not None:
            return found
    raise AssertionError(f"no escalation reached {address}")


def test_an_approver_writing_setuju_without_the_tag_is_told_to_use_it(
    make_desk: Callable[[str], Desk],
) -> None:
    # Trial 30: "Setuju, silakan dikirim." got the hint for #tanggapan, and
    # the draft waited on.
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    (request,) = desk.message_ids("approval_request")

    desk.reply(SEKCAM, "Setuju, silakan dikirim.", in_reply_to=request)

    assert desk.ticket().status == "in_progress"
    told = desk.last_text("command_reply")
    assert "draf BELUM disetujui. Untuk menyetujui draf, tulis #setuju" in told
    assert "Untuk mengirim tanggapan, tulis #tanggapan" not in told


def test_a_post_above_the_approvers_may_approve_what_it_was_shown(
    make_desk: Callable[[str], Desk],
) -> None:
    camat = f'[[staff]]\nemail = "{CAMAT}"\nname = "Camat Porong"\nrole = "camat"\n'
    desk = make_desk(camat + '[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")

    desk.reply(OPERATOR, "#setuju")
    below = desk.last_text()
    # Trial 30: the Camat had never been sent the draft.
    desk.reply(CAMAT, "#setuju")
    unseen = desk.last_text()
    escalation = _escalated_to(desk, CAMAT)
    desk.reply(CAMAT, "#setuju", in_reply_to=escalation)

    assert "#setuju: hanya untuk penyetuju tanggapan." in below
    assert "#setuju: draf yang menunggu belum dikirim kepada Bapak/Ibu." in unseen
    assert "Lampu diganti Senin." in desk.last_text("sla_escalation")
    assert desk.ticket().status == "answered"
    assert "Lampu diganti Senin." in desk.last_text("final_response")
    assert desk.actions()[-3:] == [
        (CAMAT, "draft_approved"),
        (CAMAT, "answered"),
        (CAMAT, "status"),
    ]


LOWER_APPROVERS = (
    f'[[staff]]\nemail = "{KASUBAG}"\nname = "Kasubag Umum"\nrole = "kasubag_umum"\n'
    '[workflow]\napproval = ["kasubag_umum", "sekcam"]\n'
)


def test_the_operators_answer_is_a_draft_for_the_approvers(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(LOWER_APPROVERS)

    desk.reply(OPERATOR, "#tanggapan Lampu diganti Senin.")

    assert desk.ticket().status == "in_progress"
    assert desk.letters()[-2:] == [
        ("approval_request", (KASUBAG,)),
        ("command_reply", (OPERATOR,)),
    ]


def test_a_kasubags_answer_climbs_only_the_posts_above_it(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(LOWER_APPROVERS)

    desk.reply(KASUBAG, "#tanggapan Lampu diganti Selasa.")
    drafted = (desk.ticket().status, desk.letters()[-2])
    desk.reply(SEKCAM, "#setuju")

    assert drafted == ("in_progress", ("approval_request", (SEKCAM,)))
    assert [a for a in desk.actions() if "draft" in a[1]] == [
        (KASUBAG, "draft"),
        (KASUBAG, "draft_approved"),
        (SEKCAM, "draft_approved"),
    ]
    assert desk.ticket().status == "answered"
    assert "Lampu diganti Selasa." in desk.last_text("final_response")


def test_approvers_still_asked_are_told_when_a_higher_post_sent_the_draft(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    escalation = _escalated_to(desk, CAMAT)

    desk.reply(CAMAT, "#setuju", in_reply_to=escalation)

    assert desk.ticket().status == "answered"
    assert ("staff_message", (KASUBAG,)) in desk.letters()
    assert (
        "Draf tanggapan sudah disetujui oleh Camat Porong dan dikirim kepada "
        "pengadu; permintaan persetujuan untuk draf ini tidak perlu "
        "ditindaklanjuti lagi." in desk.last_text("staff_message")
    )
    assert [to for kind, to in desk.letters() if kind == "staff_message"] == [
        (KASUBAG,)
    ]


def test_status_says_which_post_a_draft_waits_for(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")

    desk.reply(OPERATOR, "#status")

    assert (
        "Status : sedang ditangani; draf menunggu persetujuan Sekretaris Camat "
        "Unit" in desk.last_text()
    )


def test_an_approval_request_says_where_an_approval_passes_the_draft(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    to_kasubag = desk.last_text("approval_request")
    desk.reply(KASUBAG, "#setuju")
    desk.reply(SEKCAM, "#setuju")

    to_camat = desk.last_text("approval_request")
    assert (
        "Balas email ini dengan #setuju untuk meneruskan draf kepada Sekretaris "
        "Camat untuk persetujuan berikutnya" in to_kasubag
    )
    assert "#setuju untuk mengirim draf apa adanya kepada pengadu" in to_camat


def test_the_approval_request_of_a_reopened_ticket_shows_why(
    make_desk: Callable[[str], Desk],
) -> None:
    # Trial 30: the approver saw the complaint and the new draft, not the
    # complainant's reply that reopened the ticket.
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    desk.reply(SEKCAM, "#setuju")
    _citizen_reply(desk, 1, "Belum ada petugas yang datang. Kapan diperbaiki?")

    desk.reply(EKBANG, "#tanggapan Petugas datang Rabu pagi.")

    request = desk.last_text("approval_request")
    assert "Tambahan terakhir dari pengadu (" in request
    latest = request.split("Tambahan terakhir dari pengadu (")[1]
    assert latest.split("Draf tanggapan:")[0].endswith(
        f"{'-' * 60} Belum ada petugas yang datang. Kapan diperbaiki? {'-' * 60} "
    )


def test_a_forward_withdraws_the_old_units_waiting_draft(
    make_desk: Callable[[str], Desk],
) -> None:
    # Trial 30: the moved ticket kept ekbang's draft, which still went to the
    # approvers and blocked the new unit's own #tanggapan.
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")

    desk.reply(OPERATOR, "#teruskan kesos")
    desk.reply(KESOS, "#tanggapan Bantuan dicairkan Jumat.")

    assert [(a, d) for _, a, d in desk.history() if a.startswith("draft")] == [
        ("draft", "Lampu diganti Senin."),
        ("draft_withdrawn", "ticket moved to kesos"),
        ("draft", "Bantuan dicairkan Jumat."),
    ]
    assert ("staff_message", (KASUBAG,)) in desk.letters()
    assert (
        "Tiket ini dipindahkan ke Seksi Kesejahteraan Sosial oleh Operator CS; draf "
        "tanggapan yang menunggu persetujuan tidak dipakai lagi"
    ) in desk.last_text("staff_message")
    assert "Bantuan dicairkan Jumat." in desk.last_text("approval_request")


def test_a_direct_answer_over_a_waiting_draft_tells_its_author_and_approver(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")

    desk.reply(CAMAT, "#tanggapan Lampu sudah diganti hari ini.")

    assert desk.ticket().status == "answered"
    assert "Lampu sudah diganti hari ini." in desk.last_text("final_response")
    told = (
        "Tanggapan akhir dikirim langsung oleh Camat Porong; draf yang menunggu "
        "persetujuan tidak dipakai."
    )
    assert told in desk.last_text("unit_message")
    assert told in desk.last_text("staff_message")
    assert [to for kind, to in desk.letters() if kind == "staff_message"] == [
        (KASUBAG,)
    ]


def test_sending_back_from_the_request_of_a_replaced_draft_is_refused(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Draf pertama.")
    desk.reply(SEKCAM, "#revisi Sebutkan tanggalnya.")
    desk.reply(EKBANG, "#tanggapan Draf kedua, Senin 7 Desember.")
    first, _ = desk.message_ids("approval_request")

    desk.reply(SEKCAM, "#revisi Kurang jelas.", in_reply_to=first)

    assert (
        "#revisi: email yang Bapak/Ibu balas memuat draf lama yang sudah diganti."
        in desk.last_text()
    )
    assert [a for a in desk.actions() if a[1] == "draft_revised"] == [
        (SEKCAM, "draft_revised")
    ]


def test_approving_the_request_of_a_replaced_draft_is_refused(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')
    desk.reply(EKBANG, "#tanggapan Draf pertama.")
    desk.reply(SEKCAM, "#revisi Sebutkan tanggalnya.")
    desk.reply(EKBANG, "#tanggapan Draf kedua, Senin 7 Desember.")
    first, second = desk.message_ids("approval_request")

    desk.reply(SEKCAM, "#setuju", in_reply_to=first)
    refused = desk.last_text()
    status_after_stale = desk.ticket().status
    desk.reply(SEKCAM, "#setuju", in_reply_to=second)

    assert "#setuju: email yang Bapak/Ibu balas memuat draf lama" in refused
    assert status_after_stale == "in_progress"
    assert desk.ticket().status == "answered"
    assert "Draf kedua, Senin 7 Desember." in desk.last_text("final_response")


def test_approval_by_several_posts_runs_up_the_chain_in_order(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)

    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin, 7 Desember.")
    desk.reply(KASUBAG, "#setuju")
    desk.reply(CAMAT, "#revisi Sebutkan jam pengerjaannya.")
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin, 7 Desember, pukul 09.00.")
    # Trial 30: the Sekcam had not been sent the new draft; approving it
    # unseen is refused, and the draft climbs post by post.
    desk.reply(SEKCAM, "#setuju")
    refusal = desk.last_text()
    desk.reply(KASUBAG, "#setuju")
    desk.reply(SEKCAM, "#setuju")
    before_camat = desk.ticket().status
    desk.reply(CAMAT, "#setuju")

    assert desk.letters()[AFTER_INTAKE:] == [
        ("approval_request", (KASUBAG,)),
        ("command_reply", (EKBANG,)),
        ("approval_request", (SEKCAM,)),
        ("command_reply", (KASUBAG,)),
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
        ("command_reply", (CAMAT,)),
        ("approval_request", (KASUBAG,)),
        ("command_reply", (EKBANG,)),
        ("command_reply", (SEKCAM,)),
        ("approval_request", (SEKCAM,)),
        ("command_reply", (KASUBAG,)),
        ("approval_request", (CAMAT,)),
        ("command_reply", (SEKCAM,)),
        ("final_response", (BUDI,)),
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
        ("command_reply", (CAMAT,)),
    ]
    assert "#setuju: draf yang menunggu belum dikirim kepada Bapak/Ibu." in refusal
    assert before_camat == "in_progress"
    assert "pukul 09.00" in desk.last_text("final_response")
    assert desk.ticket().status == "answered"
    assert [
        (actor, action) for actor, action in desk.actions() if "draft" in action
    ] == [
        (EKBANG, "draft"),
        (KASUBAG, "draft_approved"),
        (CAMAT, "draft_revised"),
        (EKBANG, "draft"),
        (KASUBAG, "draft_approved"),
        (SEKCAM, "draft_approved"),
        (CAMAT, "draft_approved"),
    ]


def test_a_post_that_approved_is_told_so_when_it_approves_again(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)

    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    desk.reply(KASUBAG, "#setuju")
    forwarded = desk.last_text()
    desk.reply(KASUBAG, "#setuju")

    assert (
        "Draf disetujui dan diteruskan kepada Sekretaris Camat untuk persetujuan "
        "berikutnya; pengadu belum menerimanya."
    ) in " ".join(forwarded.split())
    assert "#setuju: draf sudah disetujui pada jabatan Bapak/Ibu." in desk.last_text()
    assert desk.ticket().status == "in_progress"


def test_approving_and_sending_back_in_one_reply_is_refused(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")

    desk.reply(KASUBAG, "#revisi Sebutkan jamnya.\n#setuju")

    assert desk.ticket().status == "in_progress"
    assert (
        "Satu balasan hanya boleh berisi satu #tanggapan, #tolak, #setuju, "
        "#revisi atau #selesai." in desk.last_text()
    )
    assert [action for _, action in desk.actions()][-3:] == [
        "draft",
        "status",
        "command_refused",
    ]


@pytest.mark.parametrize(
    "body", ["#teruskan kesos\n#setuju", "#setuju\n#teruskan kesos"]
)
def test_forwarding_and_deciding_in_one_reply_is_refused(
    make_desk: Callable[[str], Desk], body: str
) -> None:
    # Trial 32: forward-then-approve crashed intake (the forward withdrew the
    # draft first); approve-then-forward answered the citizen and then moved
    # the answered ticket, asking the new unit for an answer.
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan Lampu diganti Senin.")
    (request,) = desk.message_ids("approval_request")

    outcome = desk.reply(KASUBAG, body, in_reply_to=request)

    assert outcome == Outcome.STAFF
    assert (desk.ticket().status, desk.ticket().unit_code) == ("in_progress", "ekbang")
    assert (
        "#teruskan tidak dapat digabung dengan #tanggapan, #tolak, #setuju, #revisi "
        "atau #selesai dalam satu balasan; kirimkan dalam dua balasan."
    ) in desk.last_text("command_reply")
    assert "final_response" not in [kind for kind, _ in desk.letters()]


def test_a_second_draft_waits_until_the_first_is_sent_back(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(UPPER_POSTS)
    desk.reply(EKBANG, "#tanggapan TEKS SATU")
    desk.reply(KASUBAG, "#setuju")

    desk.reply(EKBANG, "#tanggapan TEKS DUA")
    refusal = desk.last_text()
    desk.reply(SEKCAM, "#revisi Perbaiki.")
    desk.reply(EKBANG, "#tanggapan TEKS DUA")

    assert (
        "#tanggapan: draf sebelumnya masih menunggu persetujuan; penyetuju dapat "
        "mengembalikannya dengan #revisi." in refusal
    )
    assert [(a, d) for _, a, d in desk.history() if a == "draft"] == [
        ("draft", "TEKS SATU"),
        ("draft", "TEKS DUA"),
    ]
    assert desk.letters()[-2] == ("approval_request", (KASUBAG,))


def test_setuju_without_a_draft_is_refused(make_desk: Callable[[str], Desk]) -> None:
    desk = make_desk('[workflow]\napproval = ["sekcam"]\n')

    desk.reply(SEKCAM, "#setuju")

    assert "#setuju: tidak ada draf tanggapan yang menunggu." in desk.last_text()


def _citizen_reply(desk: Desk, number: int, text: str = "Masih mati.") -> Outcome:
    message = EmailMessage()
    message["From"] = f"Budi Santoso <{BUDI}>"
    message["To"] = OFFICE
    message["Subject"] = f"Re: [{desk.ticket().reference}] Tanggapan atas pengaduan"
    message["Message-ID"] = f"<budi-{number}@example.com>"
    message.set_content(f"{text}\n\nPada Rab, 2 Des 2026 menulis:\n> lama\n")
    return desk.receive(message.as_bytes())


def test_selesai_closes_a_reopened_ticket_without_a_letter(desk: Desk) -> None:
    desk.reply(EKBANG, "#selesai salah kirim")
    refusal = desk.last_text()
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    _citizen_reply(desk, 1, "Lampunya sudah menyala, tapi berkedip.")
    letters_before = len(desk.letters())

    desk.reply(EKBANG, "#selesai berkedip karena tegangan PLN, bukan lampunya")

    assert "#selesai: tiket ini belum pernah ditanggapi; kirim #tanggapan" in refusal
    assert desk.ticket().status == "answered"
    assert desk.letters()[letters_before:] == [("command_reply", (EKBANG,))]
    assert "Tiket ditutup kembali tanpa surat kepada pengadu." in desk.last_text()
    assert desk.history()[-2:] == [
        (EKBANG, "closed", "berkedip karena tegangan PLN, bukan lampunya"),
        (EKBANG, "status", "in_progress -> answered"),
    ]


def test_a_non_staff_reply_to_a_staff_letter_reaches_the_unit_and_runs_nothing(
    desk: Desk,
) -> None:
    notice = desk.message_ids("unit_notification")[0]
    tickets_before = len(desk.letters())

    outcome = desk.reply(
        "kades.pamotan@example.org",
        "#tanggapan Warga sudah kami bantu.\n\nKades Pamotan",
        in_reply_to=notice,
    )

    assert outcome == Outcome.FOLLOW_UP
    assert desk.ticket().status == "received"
    assert desk.letters()[tickets_before:] == [
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
    ]
    text = desk.last_text()
    assert (
        "datang dari kades.pamotan@example.org, yang tidak terdaftar sebagai staf. "
        "Tagar di dalamnya tidak dijalankan sebagai perintah. Isi pesan: "
        "#tanggapan Warga sudah kami bantu. Kades Pamotan"
    ) in text
    assert desk.history()[-1] == (
        "mailbot",
        "outsider_reply",
        "reply to a staff letter",
    )
    with desk.app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_thank_you_keeps_the_ticket_closed_and_tells_nobody(desk: Desk) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    letters_before = len(desk.letters())

    outcome = _citizen_reply(desk, 1, "Terima kasih banyak, Pak!\n\nBudi Santoso")

    assert outcome == Outcome.FOLLOW_UP
    assert desk.ticket().status == "answered"
    assert len(desk.letters()) == letters_before
    assert desk.history()[-2:] == [
        ("mailbot", "follow_up", "via subject"),
        ("mailbot", "thanked", "ticket stays closed"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Matur nuwun sanget Pak, sangat membantu.",
        "Makasi min, cepat responsif.",
        "Ok terima kasih, sudah beres.",
    ],
)
def test_thanks_in_javanese_or_chat_style_keeps_the_ticket_closed(
    desk: Desk, text: str
) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    letters_before = len(desk.letters())

    _citizen_reply(desk, 1, text)

    assert desk.ticket().status == "answered"
    assert len(desk.letters()) == letters_before


@pytest.mark.parametrize(
    "text",
    [
        "Terima kasih, tapi lampunya masih mati.",
        "Terima kasih. Kapan diperbaiki?",
        "Terima kasih, lampu di gang sebelah juga mati.",
        "Sudah selesai, Pak?",
        "Terima kasih pak, kemarin sudah diperbaiki, sekarang padam lagi.",
        "Matur nuwun Pak, nanging ingkang wetan dereng murup.",
        "Pak, lampu di gang 3 padam sejak kemarin. Terima kasih sebelumnya.",
    ],
)
def test_thanks_with_a_problem_still_reopens(desk: Desk, text: str) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")

    _citizen_reply(desk, 1, text)

    assert desk.ticket().status == "in_progress"


def test_a_reopened_ticket_gets_a_new_due_time_and_starts_the_sla_again(
    desk: Desk,
) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    desk.clock.moment += timedelta(days=3)
    reopened_at = desk.clock.now()

    letters_before = len(desk.letters())
    _citizen_reply(desk, 1, "Terima kasih, tapi lampunya mati lagi.")

    ticket = desk.ticket()
    assert ticket.status == "in_progress"
    assert ticket.due_at == reopened_at + timedelta(hours=24)
    assert (ticket.escalation_step, ticket.reminded_at) == (0, reopened_at)
    assert [kind for kind, _ in desk.letters()[letters_before:]] == [
        "follow_up_notification",
        "follow_up_notification",
        "reopened",
    ]
    told = desk.last_text("reopened")
    assert told.startswith(
        "Yth. Bapak/Ibu Budi Santoso, Balasan Bapak/Ibu atas tanggapan kami telah "
        "kami terima. Pengaduan berikut kami buka kembali"
    )
    assert "Batas tanggapan : Minggu, 6 Desember 2026 pukul 08.05 WIB" in told


def test_a_reopen_leaves_a_late_first_answer_late_in_the_digest(desk: Desk) -> None:
    desk.clock.moment += timedelta(hours=30)
    answered_on = desk.clock.now().astimezone(WIB).date()
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")

    def on_time() -> tuple[int, int]:
        with desk.app.sessions() as session:
            figures = compute_digest(
                session, desk.app.settings, answered_on, desk.clock.now()
            ).figures
        return figures.answered, figures.answered_on_time

    before = on_time()
    desk.clock.moment += timedelta(hours=2)
    _citizen_reply(desk, 1, "Lampunya mati lagi.")

    ticket = desk.ticket()
    assert ticket.status == "in_progress"
    assert ticket.first_due_at is not None
    assert ticket.due_at > ticket.answered_at > ticket.first_due_at
    assert (before, on_time()) == ((1, 0), (1, 0))


def test_the_digest_counts_a_reopen_and_the_answer_after_it(desk: Desk) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    first_day = desk.clock.now().astimezone(WIB).date()
    desk.clock.moment += timedelta(days=1)
    _citizen_reply(desk, 1, "Lampunya mati lagi.")
    desk.reply(EKBANG, "#tanggapan Sudah diperbaiki lagi.")
    second_day = desk.clock.now().astimezone(WIB).date()

    def figures(day: date) -> tuple[int, int, int]:
        with desk.app.sessions() as session:
            found = compute_digest(
                session, desk.app.settings, day, desk.clock.now()
            ).figures
        return found.answered, found.reopened, found.answered_again

    assert (figures(first_day), figures(second_day)) == ((1, 0, 0), (0, 1, 1))


def test_the_reopen_window_is_counted_from_the_answer(desk: Desk) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    desk.clock.moment += timedelta(days=13, hours=23)
    reopened = _citizen_reply(desk, 1)
    desk.reply(EKBANG, "#tanggapan Sudah diganti lagi.")
    desk.clock.moment += timedelta(days=14, minutes=1)

    late = _citizen_reply(desk, 2)

    assert (reopened, late) == (Outcome.FOLLOW_UP, Outcome.TICKET)
    assert desk.ticket(1).status == "answered"
    assert desk.ticket(2).status == "received"
    assert desk.actions() == [
        ("mailbot", "created"),
        (EKBANG, "answered"),
        (EKBANG, "status"),
        ("mailbot", "follow_up"),
        ("mailbot", "status"),
        ("mailbot", "reopened"),
        (EKBANG, "answered"),
        (EKBANG, "status"),
        ("mailbot", "linked"),
    ]


def test_a_late_reply_opens_a_ticket_that_keeps_the_identity_given(
    desk: Desk,
) -> None:
    desk.reply(EKBANG, "#tanggapan Sudah diganti.")
    desk.clock.moment += timedelta(days=15)

    _citizen_reply(desk, 1, "Lampu di depan masjid sekarang yang mati.")

    successor = desk.ticket(2)
    assert successor.identity_provided is True
    with desk.app.sessions() as session:
        events = session.execute(
            select(Event.action, Event.detail)
            .where(Event.ticket_id == successor.id)
            .where(Event.action == "identity")
        ).all()
    assert [tuple(e) for e in events] == [
        ("identity", f"identity given on {desk.ticket(1).reference}")
    ]
    acknowledgement = desk.last_text("acknowledgement")
    assert successor.reference in acknowledgement
    assert "KELENGKAPAN IDENTITAS" not in acknowledgement


def test_a_forged_staff_reply_is_counted_for_the_digest(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[security]\ntrusted_authserv_id = "mx.porong.example.go.id"\n')
    since = desk.clock.now()

    outcome = desk.reply(EKBANG, "#tanggapan palsu")

    with desk.app.sessions() as session:
        assert forged_attempts(session, since) == 1
        assert forged_attempts(session, since + timedelta(hours=1)) == 0
    assert outcome == Outcome.FORGED
    assert desk.ticket().status == "received"
    assert desk.letters()[AFTER_INTAKE:] == [("unverified_staff_mail", (EKBANG,))]
    assert desk.last_text("unverified_staff_mail").startswith(
        "PESAN SISTEM: PENGIRIM EMAIL TIDAK DAPAT DIPASTIKAN Email dengan subjek "
        '"Re: [PRG-2026-000001-5] Pengaduan baru" yang dikirim atas nama alamat '
        "Bapak/Ibu tidak dapat dipastikan berasal dari Bapak/Ibu"
    )


def test_a_flood_of_forgeries_tells_the_claimed_address_three_times_a_day(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk('[security]\ntrusted_authserv_id = "mx.porong.example.go.id"\n')

    outcomes = {desk.reply(EKBANG, f"#tanggapan palsu {n}") for n in range(5)}

    assert outcomes == {Outcome.FORGED}
    assert len(desk.message_ids("unverified_staff_mail")) == NOTICES_PER_DAY == 3


def test_an_account_names_the_server_whose_verdict_counts_for_its_mail(
    make_desk: Callable[[str], Desk],
) -> None:
    desk = make_desk(
        '[[accounts]]\nname = "dinas"\nhost = "mail.sidoarjokab.go.id"\n'
        'port = 993\nusername = "porong@sidoarjokab.go.id"\n'
        'password_env = "MAILBOT_DINAS_PASSWORD"\n'
        'trusted_authserv_id = "mail.sidoarjokab.go.id"\n'
    )
    passed = "mail.sidoarjokab.go.id; dkim=pass header.d=porong.example.go.id"
    gmail = "mx.google.com; dkim=pass header.d=porong.example.go.id"

    outcomes = [
        desk.reply(EKBANG, "#catatan lewat server dinas", results=passed),
        desk.reply(EKBANG, "#catatan klaim server lain", results=gmail),
        desk.reply(EKBANG, "#catatan tanpa header"),
    ]

    assert outcomes == [Outcome.STAFF, Outcome.FORGED, Outcome.FORGED]
    assert [detail for _, action, detail in desk.history() if action == "note"] == [
        "lewat server dinas"
    ]


def test_an_imported_staff_mail_needs_the_verdict_of_a_configured_server(
    make_desk: Callable[[str], Desk],
) -> None:
    # Trial 32: with the servers set only per account, an imported file (which
    # inbox it came from is unknown) ran commands on a staff From alone.
    account = 'port = 993\nusername = "x@example.go.id"\npassword_env = "P"\n'
    desk = make_desk(
        '[[accounts]]\nname = "dinas"\nhost = "mail.sidoarjokab.go.id"\n'
        f'{account}trusted_authserv_id = "mail.sidoarjokab.go.id"\n'
        '[[accounts]]\nname = "gmail"\nhost = "imap.gmail.com"\n'
        f'{account}trusted_authserv_id = "mx.google.com"\n'
    )
    imported = Origin("import", "", "import:/tmp/staff.eml")
    gmail = "mx.google.com; dkim=pass header.d=porong.example.go.id"
    other = "mx.other.example; dkim=pass header.d=porong.example.go.id"

    outcomes = [
        desk.reply(EKBANG, "#catatan tanpa header", origin=imported),
        desk.reply(EKBANG, "#catatan server lain", results=other, origin=imported),
        desk.reply(EKBANG, "#catatan lewat gmail", results=gmail, origin=imported),
    ]

    assert outcomes == [Outcome.FORGED, Outcome.FORGED, Outcome.STAFF]
    assert [detail for _, action, detail in desk.history() if action == "note"] == [
        "lewat gmail"
    ]


def test_an_untagged_answer_to_a_system_reply_gets_no_second_hint(
    desk: Desk,
) -> None:
    # Trial 28: an out-of-office responder that writes like a person would
    # answer every hint with another untagged reply.
    away = "Saya sedang cuti sampai 7 Desember."
    desk.reply(EKBANG, away)
    (hint,) = desk.message_ids("command_reply")

    desk.reply(EKBANG, away, in_reply_to=hint)
    desk.reply(EKBANG, away, in_reply_to=hint)

    assert desk.message_ids("command_reply") == [hint]
    assert "TIDAK dikirim kepada pengadu" in desk.last_text("command_reply")
    notes = [detail for _, action, detail in desk.history() if action == "note"]
    assert notes == [away, away, away]


def test_staff_mail_that_names_no_ticket_is_set_aside_and_answered_once(
    desk: Desk,
) -> None:
    # Trial 30: the Camat's #status in reply to the digest became a citizen's
    # complaint, acknowledged to him and escalated for days.
    def mail(number: int, in_reply_to: str) -> bytes:
        message = EmailMessage()
        message["From"] = f"Sekcam <{SEKCAM}>"
        message["To"] = OFFICE
        message["Subject"] = "Re: Ringkasan harian Layanan Pengaduan"
        message["Message-ID"] = f"<sekcam-{number}@example.org>"
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message.set_content("#status\n\nSekcam")
        # Long Message-IDs stay on one line, as mail clients write them.
        return message.as_bytes(policy=default.clone(max_line_length=998))

    first = desk.app.intake.receive(mail(1, "digest.20261201@x"), ORIGIN)
    (notice,) = desk.message_ids("unfiled_staff_mail")
    away = desk.app.intake.receive(mail(2, notice), ORIGIN)

    assert (first.outcome, first.reference, first.reason) == (
        Outcome.QUARANTINED,
        None,
        "staff mail that names no ticket",
    )
    assert away.outcome == Outcome.QUARANTINED
    assert desk.message_ids("unfiled_staff_mail") == [notice]
    assert desk.letters()[AFTER_INTAKE:] == [("unfiled_staff_mail", (SEKCAM,))]
    told = desk.last_text("unfiled_staff_mail")
    assert told.startswith(
        "PESAN SISTEM: EMAIL TIDAK TERKAIT PENGADUAN Email Bapak/Ibu"
    )
    assert "misalnya [PRG-2026-000123-8]." in told
    with desk.app.sessions() as session:
        assert session.scalar(select(func.count(Ticket.id))) == 1


def test_staff_mail_naming_no_ticket_gets_at_most_three_notices_a_day(
    desk: Desk,
) -> None:
    # Trial 32: a responder answering without citing our notice got a new
    # notice each time, which it would answer again.
    def mail(number: int) -> bytes:
        message = EmailMessage()
        message["From"] = f"Sekcam <{SEKCAM}>"
        message["To"] = OFFICE
        message["Subject"] = "Re: Pesan sistem: email tidak terkait pengaduan"
        message["Message-ID"] = f"<sekcam-{number}@example.org>"
        message.set_content("Terima kasih, pesan Anda sudah kami terima.")
        return message.as_bytes()

    for number in range(5):
        desk.clock.moment += timedelta(minutes=10)
        desk.app.intake.receive(mail(number), ORIGIN)
    same_day = len(desk.message_ids("unfiled_staff_mail"))
    desk.clock.moment += timedelta(hours=24)
    desk.app.intake.receive(mail(5), ORIGIN)

    assert same_day == NOTICES_PER_DAY == 3
    assert len(desk.message_ids("unfiled_staff_mail")) == 4


def test_an_answer_and_a_rejection_in_one_reply_are_refused(desk: Desk) -> None:
    desk.reply(OPERATOR, "#tanggapan sudah\n#tolak bukan wewenang")

    assert desk.ticket().status == "received"
    assert (
        "Satu balasan hanya boleh berisi satu #tanggapan, #tolak, #setuju, "
        "#revisi atau #selesai." in desk.last_text()
    )


def test_two_forwards_in_one_reply_are_refused(desk: Desk) -> None:
    # Trial 34: the ticket went on through the first unit to the second, and
    # the first was told of a ticket it no longer held.
    desk.reply(OPERATOR, "#teruskan pemerintahan\n#teruskan trantib")

    assert desk.ticket().unit_code == "ekbang"
    assert "Satu balasan hanya boleh berisi satu #teruskan." in desk.last_text()


def test_forwarding_by_unit_name_and_to_an_unknown_unit(desk: Desk) -> None:
    desk.reply(OPERATOR, "#teruskan pemadam")
    refusal = desk.last_text()
    desk.reply(OPERATOR, "#assign Seksi Kesejahteraan Sosial\nsoal bantuan")

    assert (
        "#teruskan: unit 'pemadam' tidak dikenal (pilihan: umum, pemerintahan, "
        "trantib, pmd, kesos, pelayanan, ekbang)." in refusal
    )
    assert desk.ticket().unit_code == "kesos"
    assert desk.letters()[AFTER_INTAKE:] == [
        ("command_reply", (OPERATOR,)),
        ("unit_message", ("ekbang.porong@example.go.id",)),
        ("unit_message", (EKBANG,)),
        ("unit_notification", ("kesos.porong@example.go.id",)),
        ("unit_notification", (KESOS,)),
        ("command_reply", (OPERATOR,)),
    ]
    assert (
        "Tiket ini dipindahkan ke Seksi Kesejahteraan Sosial oleh Operator CS; unit "
        "itu yang kini menanganinya." in desk.last_text("unit_message")
    )
    assert "Tiket diteruskan ke Seksi Kesejahteraan Sosial; unit itu sudah diberi " in (
        desk.last_text()
    )
    assert desk.last_text("unit_notification").startswith(
        "DISPOSISI PENGADUAN untuk Seksi Kesejahteraan Sosial Didisposisikan oleh "
        "Operator CS. Catatan disposisi: soal bantuan Nomor pengaduan"
    )


@pytest.mark.parametrize(
    ("command", "unit", "note"),
    [
        # Trial 30: the note on the tag line was lost, and names with "Seksi"
        # or a trailing comma were refused.
        (
            "#teruskan trantib mohon dicek, kabelnya putus",
            "trantib",
            "mohon dicek, kabelnya putus",
        ),
        ("#teruskan Seksi PMD", "pmd", ""),
        (
            "#teruskan pemerintahan, soal sertifikat\nberkas di loket",
            "pemerintahan",
            "soal sertifikat\nberkas di loket",
        ),
        ("#teruskan Kesejahteraan Sosial: bantuan", "kesos", "bantuan"),
    ],
)
def test_a_forward_reads_the_unit_and_keeps_the_note_beside_it(
    desk: Desk, command: str, unit: str, note: str
) -> None:
    desk.reply(OPERATOR, command)

    assert desk.ticket().unit_code == unit
    forwarded = f"ekbang -> {unit}" + (f": {note}" if note else "")
    assert [d for _, a, d in desk.history() if a == "forwarded"] == [forwarded]


def test_a_note_beside_a_forward_reaches_the_new_unit(desk: Desk) -> None:
    desk.reply(
        OPERATOR,
        "#catatan pelapor warga RT 03\n#teruskan kesos\n#catatan cek DTKS\n\n"
        "Salam,\nOperator CS",
    )

    assert desk.ticket().unit_code == "kesos"
    assert desk.last_text("unit_notification").startswith(
        "DISPOSISI PENGADUAN untuk Seksi Kesejahteraan Sosial Didisposisikan oleh "
        "Operator CS. Catatan disposisi: pelapor warga RT 03 cek DTKS Nomor pengaduan"
    )
    assert [(a, d) for a, d in desk.events() if a == "note"] == [
        ("note", "pelapor warga RT 03"),
        ("note", "cek DTKS"),
    ]


def test_tags_from_the_complainant_are_only_text(desk: Desk) -> None:
    message = EmailMessage()
    message["From"] = BUDI
    message["To"] = OFFICE
    message["Subject"] = f"Re: [{desk.ticket().reference}] Pengaduan diterima"
    message["Message-ID"] = "<budi-tags@example.com>"
    message.set_content("#tolak\n#tanggapan sudah beres")

    outcome = desk.receive(message.as_bytes())

    assert outcome == Outcome.FOLLOW_UP
    assert desk.ticket().status == "received"
    assert desk.letters()[-2:] == [
        ("follow_up_notification", ("ekbang.porong@example.go.id",)),
        ("follow_up_notification", (EKBANG,)),
    ]
