"""A reference number in a stranger's subject neither reveals nor alters a ticket."""

from __future__ import annotations

import email
from email.policy import default
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
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Outcome
from mailbot.models import Ticket
from mailbot.outbox import deliver_due

SMTP = SmtpConfig(host="localhost", port=25, security="none")


def _mail(sender: str, subject: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\nTo: porong@sidoarjokab.go.id\nSubject: {subject}\n"
        f"Date: Wed, 02 Dec 2026 08:00:00 +0700\nMessage-ID: <{message_id}>\n"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        "Mohon ditindaklanjuti.\n"
    ).encode()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    return build_app(tmp_path, MovableClock(), lean=True)


def _ticket(app: App, reference: str) -> tuple[str, int, str, str]:
    with app.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.reference == reference)
        ).one()
        return (
            str(ticket.status),
            len(ticket.messages),
            ticket.complainant_email,
            ticket.subject,
        )


def test_stranger_quoting_a_reference_gets_a_ticket_of_their_own(app: App) -> None:
    first = app.intake.receive(
        _mail("Budi <budi@example.com>", "Jalan rusak di RT 03", "budi-1@example.com"),
        FROM_CITIZEN,
    )
    assert first.reference is not None
    deliver_due(app.sessions, CollectingTransport(), SMTP, app.clock)
    before = _ticket(app, first.reference)
    transport = CollectingTransport()

    stranger = app.intake.receive(
        _mail(
            "Orang Lain <lain@example.net>",
            f"Re: [{first.reference}] Pengaduan diterima: Jalan rusak di RT 03",
            "lain-1@example.net",
        ),
        FROM_CITIZEN,
    )
    deliver_due(app.sessions, transport, SMTP, app.clock)

    assert stranger.outcome == Outcome.TICKET
    assert stranger.reference not in (None, first.reference)
    assert _ticket(app, first.reference) == before
    assert before == ("received", 2, "budi@example.com", "Jalan rusak di RT 03")
    assert _ticket(app, str(stranger.reference)) == (
        "received",
        2,
        "lain@example.net",
        "Pengaduan diterima: Jalan rusak di RT 03",
    )
    [(_, recipients, raw)] = transport.sent
    assert recipients == ("lain@example.net",)
    letter = email.message_from_bytes(raw, policy=default)
    texts = [str(p.get_content()) for p in letter.walk() if not p.is_multipart()]
    shown = "\n".join([str(letter["Subject"]), *texts])
    assert first.reference not in shown
    assert shown.count(str(stranger.reference)) == 7
