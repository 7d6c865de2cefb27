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
        "Jalan rusak di RT 03",
    )
    [(_, recipients, raw)] = transport.sent
    assert recipients == ("lain@example.net",)
    letter = email.message_from_bytes(raw, policy=default)
    texts = [str(p.get_content()) for p in letter.walk() if not p.is_multipart()]
    shown = "\n".join([str(letter["Subject"]), *texts])
    assert first.reference not in shown
    assert shown.count(str(stranger.reference)) == 7


def _acknowledgement_id(app: App, reference: str) -> str:
    with app.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.reference == reference)
        ).one()
        return next(
            m.message_id for m in ticket.messages if m.kind == "acknowledgement"
        )


def _reply_to(sender: str, cited: str, message_id: str) -> bytes:
    return _mail(sender, "Re: Pengaduan diterima", message_id).replace(
        b"Content-Type:", f"In-Reply-To: <{cited}>\nContent-Type:".encode(), 1
    )


def test_a_stranger_answering_a_forwarded_letter_gets_a_ticket_of_their_own(
    app: App,
) -> None:
    first = app.intake.receive(
        _mail("Budi <budi@example.com>", "Jalan rusak di RT 03", "budi-1@example.com"),
        FROM_CITIZEN,
    )
    assert first.reference is not None
    before = _ticket(app, first.reference)
    # Budi forwarded his acknowledgement; its Message-ID is signed for him.
    letter = _acknowledgement_id(app, first.reference)

    stranger = app.intake.receive(
        _reply_to("Orang Luar <luar@example.net>", letter, "luar-1@example.net"),
        FROM_CITIZEN,
    )
    budi = app.intake.receive(
        _reply_to("Budi <budi@example.com>", letter, "budi-2@example.com"),
        FROM_CITIZEN,
    )

    assert stranger.outcome == Outcome.TICKET
    assert stranger.reference not in (None, first.reference)
    assert (budi.outcome, budi.reference) == (Outcome.FOLLOW_UP, first.reference)
    assert _ticket(app, str(stranger.reference))[2] == "luar@example.net"
    assert before[1:] == (2, "budi@example.com", "Jalan rusak di RT 03")
    assert _ticket(app, first.reference)[1] == 3


def test_an_automatic_reply_from_someone_else_is_not_attached(app: App) -> None:
    first = app.intake.receive(
        _mail("Budi <budi@example.com>", "Jalan rusak di RT 03", "budi-1@example.com"),
        FROM_CITIZEN,
    )
    assert first.reference is not None
    letter = _acknowledgement_id(app, first.reference)
    away = _reply_to("Budi Kantor <budi@kantor.example>", letter, "away-1@example.net")
    away = away.replace(
        b"Content-Type:", b"Auto-Submitted: auto-replied\nContent-Type:"
    )

    result = app.intake.receive(away, FROM_CITIZEN)

    assert (result.outcome, result.reference) == (Outcome.AUTOMATIC, None)
    assert _ticket(app, first.reference)[1] == 2


def _events(app: App, reference: str) -> list[tuple[str, str]]:
    with app.sessions() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.reference == reference)
        ).one()
        return [(e.action, e.detail) for e in ticket.events]


def test_someone_copied_who_replies_to_all_gets_a_ticket_of_their_own(
    app: App,
) -> None:
    # Trial 28: Rina copied her neighbour, whose reply-all cites her message.
    rina = app.intake.receive(
        _mail(
            "Rina <rina@example.com>", "Bantuan belum diterima", "rina-1@example.com"
        ),
        FROM_CITIZEN,
    )
    assert rina.reference is not None
    before = _ticket(app, rina.reference)

    neighbour = app.intake.receive(
        _reply_to("Tetangga <tetangga@example.net>", "rina-1@example.com", "t-1@x"),
        FROM_CITIZEN,
    )
    again = app.intake.receive(
        _reply_to("Rina <rina@example.com>", "rina-1@example.com", "rina-2@x"),
        FROM_CITIZEN,
    )

    assert neighbour.outcome == Outcome.TICKET
    assert neighbour.reference not in (None, rina.reference)
    assert _events(app, str(neighbour.reference))[1] == (
        "linked",
        f"replies in the conversation of {rina.reference} from another address",
    )
    assert (again.outcome, again.reference) == (Outcome.FOLLOW_UP, rina.reference)
    assert _ticket(app, rina.reference) == (
        "received",
        before[1] + 1,
        "rina@example.com",
        "Bantuan belum diterima",
    )


def test_a_reused_message_id_does_not_take_the_real_writers_follow_ups(
    app: App,
) -> None:
    sari = app.intake.receive(
        _mail("Sari <sari@example.com>", "Jalan berlubang", "sari-1@example.com"),
        FROM_CITIZEN,
    )
    thief = app.intake.receive(
        _mail("Penipu <penipu@example.net>", "Info lain", "sari-1@example.com"),
        FROM_CITIZEN,
    )

    follow_up = app.intake.receive(
        _reply_to("Sari <sari@example.com>", "sari-1@example.com", "sari-2@x"),
        FROM_CITIZEN,
    )

    assert thief.outcome == Outcome.TICKET
    assert thief.reference not in (None, sari.reference)
    assert (follow_up.outcome, follow_up.reference) == (
        Outcome.FOLLOW_UP,
        sari.reference,
    )
    assert _ticket(app, str(thief.reference))[1] == 2


def test_a_reused_message_id_in_one_batch_leaves_the_writer_on_their_own_ticket(
    app: App,
) -> None:
    # Trial 32: in one import the later holder of a reused Message-ID took the
    # place of the first in the batch's notes, and the real writer's reply
    # became a new ticket in the thief's conversation.
    results = app.intake.receive_batch(
        [
            (
                _mail("Sari <sari@example.com>", "Jalan berlubang", "sari-1@x"),
                FROM_CITIZEN,
            ),
            (_mail("Penipu <penipu@example.net>", "Info", "sari-1@x"), FROM_CITIZEN),
            (
                _reply_to("Sari <sari@example.com>", "sari-1@x", "sari-2@x"),
                FROM_CITIZEN,
            ),
        ]
    )

    sari, thief, follow_up = ((r.outcome, r.reference) for r in results)
    assert sari == (Outcome.TICKET, "PRG-2026-000001-5")
    assert thief == (Outcome.TICKET, "PRG-2026-000002-8")
    assert follow_up == (Outcome.FOLLOW_UP, "PRG-2026-000001-5")
