"""Bounces: delivery failure reports mark the letter they return as failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from intakekit import (
    FROM_CITIZEN,
    SIGNING_ENV,
    SIGNING_KEY,
    CollectingTransport,
    MovableClock,
    build_app,
)
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Outcome
from mailbot.models import InboundMail, OutboxItem, Ticket
from mailbot.outbox import deliver_due

DATA = Path(__file__).parent / "data"
SMTP = SmtpConfig(host="localhost", port=25, security="none")
CITIZEN = "budi.santoso@example.com"
COMPLAINT = (
    f"From: Budi Santoso <{CITIZEN}>\n"
    "To: porong@sidoarjokab.go.id\n"
    "Subject: Jalan rusak\n"
    "Date: Wed, 02 Dec 2026 08:00:00 +0700\n"
    "Message-ID: <jalan-1@example.com>\n"
    'Content-Type: text/plain; charset="utf-8"\n\n'
    "Jalan di depan rumah saya rusak parah.\n"
).encode()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    return build_app(tmp_path, MovableClock(), lean=True)


def _acknowledged(app: App) -> tuple[str, str]:
    """Open a ticket and send its acknowledgement; (reference, Message-ID)."""
    result = app.intake.receive(COMPLAINT, FROM_CITIZEN)
    deliver_due(app.sessions, CollectingTransport(), SMTP, app.clock)
    with app.sessions() as session:
        message_id = session.scalars(select(OutboxItem.message_id)).one()
    assert result.reference is not None
    return result.reference, message_id


def _bounce(name: str, reference: str, message_id: str) -> bytes:
    template = (DATA / name).read_text("utf-8")
    text = template.format(
        recipient=CITIZEN, reference=reference, message_id=message_id
    )
    return text.encode()


def _outbox_and_history(app: App) -> tuple[tuple[str, str], list[tuple[str, str]]]:
    with app.sessions() as session:
        item = session.scalars(select(OutboxItem)).one()
        ticket = session.scalars(select(Ticket)).one()
        history = [(e.action, e.detail) for e in ticket.events]
        return (str(item.status), item.last_reply), history


@pytest.mark.parametrize(
    ("name", "diagnostic"),
    [
        (
            "bounce-dsn-multipart-report.eml",
            f"550 5.1.1 <{CITIZEN}>: Recipient address rejected: User unknown",
        ),
        ("bounce-qmail-plain.eml", "550 5.1.1 mailbox unavailable"),
        (
            "bounce-exchange-undeliverable.eml",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by "
            "SMTP address lookup'",
        ),
        (
            "bounce-gmail-failure-without-id.eml",
            "550 5.1.1 The email account that you tried to reach does not exist.",
        ),
    ],
)
def test_bounce_marks_the_acknowledgement_failed(
    app: App, name: str, diagnostic: str
) -> None:
    reference, message_id = _acknowledged(app)

    result = app.intake.receive(_bounce(name, reference, message_id), FROM_CITIZEN)

    assert (result.outcome, result.reference) == (Outcome.AUTOMATIC, reference)
    outbox, history = _outbox_and_history(app)
    assert outbox == ("failed", f"bounced: {diagnostic}")
    assert history == [
        ("created", "unit umum"),
        ("bounce", f"acknowledgement (outbox 1) not delivered: {diagnostic}"),
    ]
    with app.sessions() as session:
        assert session.scalar(select(func.count(Ticket.id))) == 1
        kinds = [m.kind for m in session.scalars(select(Ticket)).one().messages]
    assert kinds == ["complaint", "acknowledgement", "bounce"]


@pytest.mark.parametrize(
    "name", ["bounce-dsn-multipart-report.eml", "bounce-qmail-plain.eml"]
)
def test_a_bounce_of_a_letter_not_yet_sent_cancels_nothing(app: App, name: str) -> None:
    # Trial 28: anyone can write a bounce; one for a letter still waiting in
    # the outbox (an SMTP outage) had marked it failed before it was sent.
    result = app.intake.receive(COMPLAINT, FROM_CITIZEN)
    assert result.reference is not None
    with app.sessions() as session:
        message_id = session.scalars(select(OutboxItem.message_id)).one()

    app.intake.receive(_bounce(name, result.reference, message_id), FROM_CITIZEN)
    report = deliver_due(app.sessions, CollectingTransport(), SMTP, app.clock)

    assert report.sent == 1
    outbox, history = _outbox_and_history(app)
    assert outbox == ("sent", "250 2.0.0 accepted as 1")
    assert history == [("created", "unit umum")]


def test_delayed_report_leaves_the_letter_sent(app: App) -> None:
    reference, message_id = _acknowledged(app)
    raw = _bounce("bounce-dsn-delayed.eml", reference, message_id)

    result = app.intake.receive(raw, FROM_CITIZEN)

    assert result.outcome == Outcome.AUTOMATIC
    outbox, history = _outbox_and_history(app)
    assert outbox == ("sent", "250 2.0.0 accepted as 1")
    assert history[-1] == (
        "bounce",
        "acknowledgement (outbox 1) delivery delayed: connect to "
        "mx.example.com[192.0.2.25]:25: Connection timed out",
    )


def test_bounce_of_unknown_letter_opens_nothing(app: App) -> None:
    raw = _bounce(
        "bounce-qmail-plain.eml",
        "PRG-2026-000001-4",
        "someone-else@example.net",
    )

    result = app.intake.receive(raw, FROM_CITIZEN)

    assert (result.outcome, result.reference) == (Outcome.AUTOMATIC, None)
    with app.sessions() as session:
        inbound = session.get(InboundMail, result.inbound_id)
        assert inbound is not None
        assert (inbound.status, inbound.reason) == (
            "automatic",
            "delivery status report",
        )
        assert session.scalar(select(func.count(Ticket.id))) == 0


def test_forged_id_in_a_bounce_is_not_trusted(app: App) -> None:
    reference, message_id = _acknowledged(app)
    forged = message_id[:-30] + "0" * 20 + message_id[-10:]
    raw = _bounce("bounce-qmail-plain.eml", "PRG-2026-999999-0", forged)

    result = app.intake.receive(raw, FROM_CITIZEN)

    assert (result.outcome, result.reference) == (Outcome.AUTOMATIC, None)
    outbox, _ = _outbox_and_history(app)
    assert outbox == ("sent", "250 2.0.0 accepted as 1")
    assert reference != "PRG-2026-999999-0"
