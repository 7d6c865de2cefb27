"""The auto-reply limit: two autoresponders can never ping-pong for long."""

from __future__ import annotations

import email
from email.message import Message
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
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Outcome
from mailbot.models import Event, Ticket
from mailbot.outbox import deliver_due

SMTP = SmtpConfig(host="localhost", port=25, security="none")
RESPONDER = "liburan@example.org"


class VacationResponder:
    """Answers every letter it gets, and looks human: no Auto-Submitted header.

    ``threaded`` answers cite our letter (In-Reply-To); otherwise each answer
    looks like fresh mail, the worst case, because it opens a new ticket.
    """

    def __init__(self, threaded: bool) -> None:
        self.threaded = threaded
        self.count = 0
        self.last_letter: Message | None = None

    def receive(self, raw: bytes) -> None:
        self.last_letter = email.message_from_bytes(raw, policy=default)

    def answer(self) -> bytes:
        self.count += 1
        headers = [
            f"From: Pak Hadi <{RESPONDER}>",
            "To: porong@sidoarjokab.go.id",
            f"Message-ID: <vacation-{self.count}@example.org>",
            "Date: Wed, 02 Dec 2026 08:00:00 +0700",
            'Content-Type: text/plain; charset="utf-8"',
        ]
        letter = self.last_letter
        if self.threaded and letter is not None:
            headers.append(f"Subject: Re: {letter['Subject']}")
            headers.append(f"In-Reply-To: {letter['Message-ID']}")
        else:
            headers.append(f"Subject: Terima kasih atas email Anda ({self.count})")
        body = "Terima kasih, email Anda akan saya baca setelah kembali bertugas."
        return ("\n".join(headers) + "\n\n" + body + "\n").encode()


def _ping_pong(app: App, responder: VacationResponder, rounds: int) -> list[int]:
    """Run the pair; the rounds in which we answered the responder."""
    clock = app.clock
    assert isinstance(clock, MovableClock)
    transport = CollectingTransport()
    answered: list[int] = []
    for round_number in range(rounds):
        app.intake.receive(responder.answer(), FROM_CITIZEN)
        before = len(transport.sent)
        deliver_due(app.sessions, transport, SMTP, clock)
        for _, recipients, raw in transport.sent[before:]:
            if recipients == (RESPONDER,):
                answered.append(round_number)
                responder.receive(raw)
        clock.advance(minutes=2)
    return answered


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    return build_app(tmp_path, MovableClock(), lean=True)


def test_thousand_rounds_with_a_responder_that_looks_human(app: App) -> None:
    responder = VacationResponder(threaded=False)

    answered = _ping_pong(app, responder, 1000)

    # 1,000 rounds two minutes apart span 33 h 20 min: five answers in the
    # first 24 hours, five more once the first ones left the window (round 721
    # is 24 h 2 min after round 0).
    assert answered == [0, 1, 2, 3, 4, 721, 722, 723, 724, 725]
    with app.sessions() as session:
        tickets = session.scalar(select(func.count(Ticket.id)))
        withheld = session.scalar(
            select(func.count(Event.id)).where(
                Event.action == "acknowledgement_withheld"
            )
        )
    assert (tickets, withheld) == (1000, 990)


def test_responder_that_answers_in_thread_gets_one_letter(app: App) -> None:
    responder = VacationResponder(threaded=True)

    answered = _ping_pong(app, responder, 100)

    assert answered == [0]
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        kinds = [m.kind for m in ticket.messages]
    assert kinds.count("follow_up") == 99
    assert kinds.count("acknowledgement") == 1


def test_withheld_acknowledgement_is_recorded_with_its_reason(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    responder = VacationResponder(threaded=False)
    for _ in range(6):
        result = app.intake.receive(responder.answer(), FROM_CITIZEN)

    assert result.outcome == Outcome.TICKET
    with app.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.reference == result.reference)
        ).one()
        history = [(e.action, e.detail) for e in ticket.events]
        kinds = [m.kind for m in ticket.messages]
    assert history == [
        ("created", "unit umum"),
        (
            "acknowledgement_withheld",
            "no acknowledgement: 5 automatic answers to this address in the last "
            "24 h (limit 5)",
        ),
    ]
    assert kinds == ["complaint"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"ticket {result.reference}: acknowledgement withheld, auto-reply limit reached"
    ]
