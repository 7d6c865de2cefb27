"""Screening and intake of automatic mail, mailing-list mail and loops."""

from __future__ import annotations

import email
from datetime import UTC, datetime
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
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Outcome
from mailbot.models import InboundMail, OutboxItem, Ticket
from mailbot.outbox import deliver_due
from mailbot.parsing import parse_message
from mailbot.screening import Verdict, is_list_mail, screen

_NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
SMTP = SmtpConfig(host="localhost", port=25, security="none")
OWN = frozenset({"porong@sidoarjokab.go.id", "kecamatanporong@gmail.com"})


def _mail(headers: str, body: str = "Jalan di depan rumah saya rusak parah.") -> bytes:
    base = (
        "To: porong@sidoarjokab.go.id\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0700\n"
        'Content-Type: text/plain; charset="utf-8"\n'
    )
    return f"{headers.strip()}\n{base}\n{body}\n".encode()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    return build_app(tmp_path, MovableClock())


@pytest.mark.parametrize(
    ("headers", "verdict", "reason"),
    [
        (
            "From: a@example.com\nAuto-Submitted: auto-replied",
            "automatic",
            "Auto-Submitted: auto-replied",
        ),
        (
            "From: a@example.com\nAuto-Submitted: auto-generated",
            "automatic",
            "Auto-Submitted: auto-generated",
        ),
        ("From: a@example.com\nAuto-Submitted: no", "person", ""),
        ("From: a@example.com\nX-Autoreply: yes", "automatic", "header X-Autoreply"),
        (
            "From: a@example.com\nX-Autorespond: yes",
            "automatic",
            "header X-Autorespond",
        ),
        ("From: a@example.com\nPrecedence: bulk", "automatic", "Precedence: bulk"),
        ("From: a@example.com\nPrecedence: junk", "automatic", "Precedence: junk"),
        (
            "From: a@example.com\nPrecedence: auto_reply",
            "automatic",
            "Precedence: auto_reply",
        ),
        ("From: a@example.com\nPrecedence: list", "person", ""),
        ("From: noreply@bank.example", "automatic", "sender is noreply"),
        ("From: no-reply@bank.example", "automatic", "sender is no-reply"),
        ("From: postmaster@example.com", "automatic", "sender is postmaster"),
        (
            "From: porong@sidoarjokab.go.id",
            "automatic",
            "sent from one of our own addresses",
        ),
        (
            "From: KecamatanPorong@Gmail.com",
            "automatic",
            "sent from one of our own addresses",
        ),
    ],
)
def test_screen_headers(headers: str, verdict: str, reason: str) -> None:
    mail = parse_message(_mail(headers + "\nMessage-ID: <x@example.com>"), now=_NOW)

    screening = screen(mail, OWN)

    assert (screening.verdict, screening.reason) == (verdict, reason)


def test_mailer_daemon_with_null_return_path_is_a_bounce() -> None:
    raw = _mail("Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.com\nSubject: hi")

    screening = screen(parse_message(raw, now=_NOW), OWN)

    assert (screening.verdict, screening.reason) == (
        Verdict.BOUNCE,
        "null return path from mailer-daemon",
    )


def test_list_mail_is_a_person_and_recognised_as_list_mail() -> None:
    with_id = parse_message(
        _mail("From: a@example.com\nList-Id: <rt05.x.org>"), now=_NOW
    )
    by_precedence = parse_message(
        _mail("From: a@example.com\nPrecedence: list"), now=_NOW
    )
    plain = parse_message(_mail("From: a@example.com"), now=_NOW)

    assert screen(with_id, OWN).verdict == Verdict.PERSON
    assert [is_list_mail(m) for m in (with_id, by_precedence, plain)] == [
        True,
        True,
        False,
    ]


def _acknowledgement(app: App, raw: bytes) -> Message:
    result = app.intake.receive(raw, FROM_CITIZEN)
    assert result.outcome == Outcome.TICKET
    transport = CollectingTransport()
    deliver_due(app.sessions, transport, SMTP, app.clock)
    acks = [m for m in transport.sent if b"Pengaduan diterima" in m[2]]
    assert len(acks) == 1
    assert acks[0][1] == ("warga.rt05@example.com",)
    return email.message_from_bytes(acks[0][2], policy=default)


def test_list_mail_opens_a_ticket_and_only_the_writer_is_acknowledged(
    app: App,
) -> None:
    raw = _mail(
        "From: Warga RT 05 <warga.rt05@example.com>\n"
        "Sender: rt05-porong@googlegroups.example\n"
        "Reply-To: rt05-porong@googlegroups.example\n"
        "Cc: rt05-porong@googlegroups.example\n"
        "List-Id: Warga RT 05 <rt05-porong.googlegroups.example>\n"
        "List-Post: <mailto:rt05-porong@googlegroups.example>\n"
        "Precedence: list\n"
        "Subject: Sampah menumpuk di pinggir jalan\n"
        "Message-ID: <list-1@example.com>"
    )

    ack = _acknowledgement(app, raw)

    assert ack["To"] == "warga.rt05@example.com"
    assert ack["Cc"] is None
    assert "googlegroups" not in ack.as_string()
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
    assert ticket.complainant_email == "warga.rt05@example.com"


def test_list_that_rewrites_from_is_answered_at_the_writer(app: App) -> None:
    raw = _mail(
        "From: 'Warga RT 05' via Warga Porong <rt05-porong@googlegroups.example>\n"
        "Reply-To: Warga RT 05 <warga.rt05@example.com>\n"
        "List-Id: <rt05-porong.googlegroups.example>\n"
        "Subject: Sampah menumpuk di pinggir jalan\n"
        "Message-ID: <list-2@example.com>"
    )

    ack = _acknowledgement(app, raw)

    assert ack["To"] == "warga.rt05@example.com"


def test_autoreply_citing_our_letter_is_attached_not_answered(app: App) -> None:
    first = _mail(
        "From: Rina <rina@example.com>\nSubject: Lampu jalan mati\n"
        "Message-ID: <first@example.com>"
    )
    app.intake.receive(first, FROM_CITIZEN)
    with app.sessions() as session:
        ack_id = session.scalars(
            select(OutboxItem.message_id).where(OutboxItem.kind == "acknowledgement")
        ).one()
    vacation = _mail(
        "From: Rina <rina@example.com>\n"
        "Subject: Out of Office: Re: Pengaduan diterima\n"
        f"In-Reply-To: <{ack_id}>\nMessage-ID: <ooo-1@example.com>",
        "Saya sedang cuti sampai 10 Desember.",
    )

    result = app.intake.receive(vacation, FROM_CITIZEN)

    assert (result.outcome, result.reason) == (
        Outcome.AUTOMATIC,
        "answers our own letter and its subject reads as automatic",
    )
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        kinds = [m.kind for m in ticket.messages]
        outbox = session.scalars(select(OutboxItem.kind)).all()
        inbound = session.get(InboundMail, result.inbound_id)
        assert inbound is not None
        assert (inbound.status, inbound.ticket_id) == ("automatic", ticket.id)
    assert result.reference == ticket.reference
    assert kinds == ["complaint", "acknowledgement", "unit_notification", "automatic"]
    assert outbox == ["acknowledgement", "unit_notification"]


def test_automatic_mail_without_a_ticket_is_archived_only(app: App) -> None:
    raw = _mail(
        "From: Rina <rina@example.com>\nAuto-Submitted: auto-replied\n"
        "Subject: Balasan otomatis\nMessage-ID: <ooo-2@example.com>"
    )

    result = app.intake.receive(raw, FROM_CITIZEN)

    with app.sessions() as session:
        inbound = session.get(InboundMail, result.inbound_id)
        assert inbound is not None
        assert Path(inbound.raw_path).read_bytes() == raw
        assert session.scalars(select(Ticket)).all() == []
        assert session.scalars(select(OutboxItem)).all() == []
    assert (result.outcome, result.reference) == (Outcome.AUTOMATIC, None)
