"""The SLA sweep: one reminder, each escalation step once, nothing when answered."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from seeding import FixedClock, add_ticket, make_settings
from sqlalchemy import select

from mailbot.app import App
from mailbot.escalation import SlaWatch
from mailbot.models import Event, OutboxItem, Ticket, TicketStatus
from mailbot.service import sla_watch
from mailbot.tickets import change_status, record_event

RECEIVED = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Asia/Jakarta"))
DUE = RECEIVED + timedelta(hours=24)


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App.build(make_settings(tmp_path), FixedClock(RECEIVED))


@pytest.fixture
def watch(app: App) -> SlaWatch:
    return sla_watch(app)


def open_one(app: App, status: TicketStatus = TicketStatus.RECEIVED) -> int:
    with app.sessions.begin() as session:
        ticket = add_ticket(session, app.settings, RECEIVED)
        change_status(session, ticket, status, at=RECEIVED)
        return ticket.id


def letters(app: App) -> list[tuple[str, str]]:
    with app.sessions() as session:
        rows = session.execute(
            select(OutboxItem.kind, OutboxItem.recipients).order_by(OutboxItem.id)
        )
        return [(kind, to[0]) for kind, to in rows if kind.startswith("sla_")]


def history(app: App, ticket_id: int) -> list[tuple[str, str]]:
    with app.sessions() as session:
        rows = session.execute(
            select(Event.action, Event.detail)
            .where(Event.ticket_id == ticket_id)
            .where(Event.action.in_(["reminder", "escalation"]))
            .order_by(Event.id)
        )
        return [(action, detail) for action, detail in rows]


def ticket(app: App, ticket_id: int) -> Ticket:
    with app.sessions() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        return found


def test_the_unit_is_reminded_once_at_three_quarters_of_the_time(
    app: App, watch: SlaWatch
) -> None:
    ticket_id = open_one(app)
    remind_at = RECEIVED + timedelta(hours=18)

    early = watch.sweep(remind_at - timedelta(seconds=1))
    first = watch.sweep(remind_at)
    again = watch.sweep(remind_at + timedelta(hours=1))

    assert (early.reminded, first.reminded, again.reminded) == (0, 1, 0)
    assert letters(app) == [
        ("sla_reminder", "ekbang.porong@example.go.id"),
        ("sla_reminder", "ekbang.staf@porong.example.go.id"),
    ]
    assert history(app, ticket_id) == [("reminder", "unit ekbang: 2 recipients")]
    assert ticket(app, ticket_id).reminded_at == remind_at


def test_each_escalation_step_is_sent_exactly_once(app: App, watch: SlaWatch) -> None:
    ticket_id = open_one(app, TicketStatus.IN_PROGRESS)
    moments = [
        DUE - timedelta(seconds=1),
        DUE,
        DUE + timedelta(hours=1),
        DUE + timedelta(hours=4),
        DUE + timedelta(hours=4),
        DUE + timedelta(hours=7, minutes=59),
        DUE + timedelta(hours=8),
        DUE + timedelta(hours=30),
        DUE + timedelta(days=9),
    ]

    escalated = [watch.sweep(moment).escalated for moment in moments]

    assert escalated == [0, 1, 0, 1, 0, 0, 1, 0, 0]
    assert [kind_to for kind_to in letters(app) if kind_to[0] == "sla_escalation"] == [
        ("sla_escalation", "kasubag@porong.example.go.id"),
        ("sla_escalation", "sekcam@porong.example.go.id"),
        ("sla_escalation", "camat@porong.example.go.id"),
    ]
    assert history(app, ticket_id) == [
        ("reminder", "unit ekbang: 2 recipients"),
        ("escalation", "step 1: kasubag_umum, 1 recipients"),
        ("escalation", "step 2: sekcam, 1 recipients"),
        ("escalation", "step 3: camat, 1 recipients"),
    ]
    assert ticket(app, ticket_id).escalation_step == 3


def test_a_sweep_after_the_due_time_escalates_without_a_late_reminder(
    app: App, watch: SlaWatch
) -> None:
    ticket_id = open_one(app)

    report = watch.sweep(DUE + timedelta(minutes=5))

    assert (report.reminded, report.escalated) == (0, 1)
    assert history(app, ticket_id) == [
        ("escalation", "step 1: kasubag_umum, 1 recipients")
    ]


def test_a_post_nobody_holds_is_passed_over_to_the_next_one_up(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={"staff": tuple(s for s in settings.staff if s.role != "kasubag_umum")}
    )
    app = App.build(settings, FixedClock(RECEIVED))
    watch = sla_watch(app)
    ticket_id = open_one(app, TicketStatus.IN_PROGRESS)

    moments = [DUE, DUE + timedelta(hours=4), DUE + timedelta(hours=8)]
    escalated = [watch.sweep(moment).escalated for moment in moments]

    assert escalated == [1, 0, 1]
    assert [kind_to for kind_to in letters(app) if kind_to[0] == "sla_escalation"] == [
        ("sla_escalation", "sekcam@porong.example.go.id"),
        ("sla_escalation", "camat@porong.example.go.id"),
    ]
    assert history(app, ticket_id) == [
        (
            "escalation",
            "step 2: sekcam, 1 recipients (no staff with role kasubag_umum)",
        ),
        ("escalation", "step 3: camat, 1 recipients"),
    ]


@pytest.mark.parametrize("status", [TicketStatus.ANSWERED, TicketStatus.REJECTED])
def test_closed_tickets_never_escalate(
    app: App, watch: SlaWatch, status: TicketStatus
) -> None:
    ticket_id = open_one(app, status)

    reports = [watch.sweep(DUE + timedelta(hours=h)) for h in (-6, 0, 4, 8, 48)]

    assert [(r.reminded, r.escalated) for r in reports] == [(0, 0)] * 5
    assert letters(app) == []
    assert ticket(app, ticket_id).escalation_step == 0


def test_the_escalation_letter_names_the_ticket_and_masks_the_subject(
    app: App, watch: SlaWatch
) -> None:
    with app.sessions.begin() as session:
        add_ticket(
            session,
            app.settings,
            RECEIVED,
            subject="KTP 3515012305878901 belum jadi",
        )

    watch.sweep(DUE + timedelta(hours=2))

    with app.sessions() as session:
        raw = session.scalars(
            select(OutboxItem.raw).where(OutboxItem.kind == "sla_escalation")
        ).one()
    text = raw.decode("utf-8")
    letter = email.message_from_bytes(raw, policy=default)
    assert str(letter["Subject"]) == (
        "[PRG-2026-000001-5] Eskalasi ke Kasubag Umum dan Kepegawaian: lewat batas"
    )
    assert "351501******8901" in text
    assert "3515012305878901" not in text
    assert "terlambat 2 jam" in text


def test_answering_stamps_the_time_the_digest_counts(app: App) -> None:
    ticket_id = open_one(app)
    answered = RECEIVED + timedelta(hours=5)

    with app.sessions.begin() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        change_status(session, found, TicketStatus.ANSWERED, at=answered)

    assert ticket(app, ticket_id).answered_at == answered


def _plain(raw: bytes) -> str:
    letter = email.message_from_bytes(raw, policy=default)
    body = letter.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


def test_a_draft_waiting_for_approval_reminds_its_approver_not_the_unit(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, '[workflow]\napproval = ["kasubag_umum", "sekcam"]\n'
    )
    app = App.build(settings, FixedClock(RECEIVED))
    with app.sessions.begin() as session:
        draft = add_ticket(session, settings, RECEIVED)
        record_event(
            session,
            draft,
            "draft",
            "Lampu diganti Senin.",
            at=RECEIVED,
            actor="ekbang.staf@porong.example.go.id",
        )
        record_event(
            session,
            draft,
            "draft_approved",
            "approved by Kasubag",
            at=RECEIVED,
            actor="kasubag@porong.example.go.id",
        )
        plain = add_ticket(session, settings, RECEIVED, subject="Sampah")
        draft_id, plain_id = draft.id, plain.id
    watch = sla_watch(app)

    watch.sweep(RECEIVED + timedelta(hours=18))
    watch.sweep(DUE + timedelta(hours=2))

    # Trial 30: the draft had reached the Sekcam; an overdue one goes above
    # it, not back down to the Kasubag who approved it already.
    assert history(app, draft_id) == [
        ("reminder", "approver sekcam: 1 recipients"),
        ("escalation", "step 3: camat, 1 recipients"),
    ]
    assert history(app, plain_id)[0] == ("reminder", "unit ekbang: 2 recipients")
    with app.sessions() as session:
        rows = session.execute(
            select(OutboxItem.kind, OutboxItem.recipients, OutboxItem.raw)
            .where(OutboxItem.ticket_id == draft_id)
            .order_by(OutboxItem.id)
        ).all()
    assert [(kind, to) for kind, to, _ in rows] == [
        ("sla_reminder", ["sekcam@porong.example.go.id"]),
        ("sla_escalation", ["camat@porong.example.go.id"]),
    ]
    reminder, escalation = (_plain(raw) for _, _, raw in rows)
    assert reminder.startswith(
        "PENGINGAT PERSETUJUAN DRAF untuk Sekretaris Camat Draf tanggapan Seksi "
        "Perekonomian dan Pembangunan atas pengaduan PRG-2026-000001-5 menunggu "
        "persetujuan Sekretaris Camat. Batas tanggapan tinggal 6 jam lagi."
    )
    framed = f"Draf tanggapan: {'-' * 60} Lampu diganti Senin. {'-' * 60}"
    assert framed in reminder
    assert "Untuk menyetujui draf di atas, balas email ini dengan #setuju" in reminder
    assert (
        "Bila draf belum disetujui sampai batas tersebut, pengaduan ini dieskalasi "
        "kepada Camat." in reminder
    )
    assert f"Draf tanggapan yang menunggu persetujuan: {framed[16:]}" in escalation
    assert "Tetap cantumkan [PRG-2026-000001-5] pada subjek." in reminder
    assert (
        "belum dijawab kepada pengadu: draf tanggapan Seksi Perekonomian dan "
        "Pembangunan menunggu persetujuan Sekretaris Camat." in escalation
    )


def test_a_reminder_names_the_first_post_an_overdue_ticket_goes_to(
    tmp_path: Path,
) -> None:
    # Nobody holds the Kasubag's post: overdue tickets go to the Sekcam first.
    settings = make_settings(tmp_path)
    chain = [s for s in settings.staff if s.role != "kasubag_umum"]
    app = App.build(
        settings.model_copy(update={"staff": tuple(chain)}), FixedClock(RECEIVED)
    )
    with app.sessions.begin() as session:
        add_ticket(session, app.settings, RECEIVED)

    sla_watch(app).sweep(RECEIVED + timedelta(hours=18))

    with app.sessions() as session:
        raws = session.scalars(
            select(OutboxItem.raw).where(OutboxItem.kind == "sla_reminder")
        ).all()
    assert (
        "Bila belum ditanggapi sampai batas tersebut, pengaduan ini dieskalasi "
        "kepada Sekretaris Camat." in _plain(raws[0])
    )


def test_in_working_hours_mode_the_reminder_and_each_step_get_office_time(
    tmp_path: Path,
) -> None:
    # Received Friday 14 August after closing; the weekend and Monday 17
    # August (a holiday) are closed, so 24 office hours end Thursday 14:30.
    wib = ZoneInfo("Asia/Jakarta")
    received = datetime(2026, 8, 14, 15, 0, tzinfo=wib)
    settings = make_settings(tmp_path, '[sla]\nmode = "working_hours"\n')
    app = App.build(settings, FixedClock(received))
    with app.sessions.begin() as session:
        ticket_id = add_ticket(session, settings, received).id
    watch = sla_watch(app)

    start = datetime(2026, 8, 20, 8, 0, tzinfo=wib)
    for half_hours in range(2 * 31):
        watch.sweep(start + timedelta(minutes=30 * half_hours))

    with app.sessions() as session:
        rows = session.execute(
            select(Event.action, Event.at)
            .where(Event.ticket_id == ticket_id)
            .where(Event.action.in_(["reminder", "escalation"]))
            .order_by(Event.id)
        ).all()
    with app.sessions() as session:
        camat = session.scalars(
            select(OutboxItem.raw)
            .where(OutboxItem.kind == "sla_escalation")
            .order_by(OutboxItem.id.desc())
            .limit(1)
        ).one()
    assert "(terlambat 8 jam waktu kerja)" in _plain(camat)
    # 18 office hours after receipt; then due + 0, + 4 and + 8 office hours.
    assert [
        (action, at.astimezone(wib).strftime("%a %H:%M")) for action, at in rows
    ] == [
        ("reminder", "Thu 08:30"),
        ("escalation", "Thu 14:30"),
        ("escalation", "Fri 10:00"),
        ("escalation", "Fri 14:00"),
    ]


def test_a_later_step_names_the_posts_told_before(app: App, watch: SlaWatch) -> None:
    open_one(app)

    for hours in (0, 4, 8):
        watch.sweep(DUE + timedelta(hours=hours))

    with app.sessions() as session:
        raws = session.scalars(
            select(OutboxItem.raw)
            .where(OutboxItem.kind == "sla_escalation")
            .order_by(OutboxItem.id)
        ).all()
    first, camat = _plain(raws[0]), _plain(raws[-1])
    assert "Sebelumnya" not in first
    assert (
        "Sebelumnya pengaduan ini telah diteruskan kepada: - Kasubag Umum dan "
        "Kepegawaian, Rabu, 2 Desember 2026 pukul 08.00 WIB - Sekretaris Camat, "
        "Rabu, 2 Desember 2026 pukul 12.00 WIB"
    ) in camat
