"""Batches: several messages in one transaction keep exactly what one at a time keeps.

Real SQLite, the real intake and templates; a batch's own rows must be seen by
the messages after it (the same message twice, a reply to a complaint of the
same batch, the auto-reply count) before anything is written.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from intakekit import SIGNING_ENV, SIGNING_KEY, MovableClock, build_app
from sqlalchemy import event, func, select

from mailbot.app import App
from mailbot.inbound import Origin, Outcome, Result
from mailbot.models import Event, InboundMail, Message, Ticket
from mailbot.references import Reference
from mailbot.rendering import Renderer, default_templates_dir

ORIGIN = Origin("dinas", "porong@sidoarjokab.go.id", "dinas:INBOX:1")
BUDI = "Budi Santoso <budi@example.com>"
SITI = "Siti Aminah <siti@example.com>"


def _mail(sender: str, message_id: str, subject: str, extra: str = "") -> bytes:
    head = f"From: {sender}\n" if sender else ""
    return (
        f"{head}To: porong@sidoarjokab.go.id\n"
        f"Subject: {subject}\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0700\n"
        f"Message-ID: <{message_id}>\n"
        f"{extra}"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        "Lampu PJU mati sejak seminggu, jalan gelap. NIK saya terlampir.\n"
    ).encode()


def _messages() -> list[bytes]:
    complaint = _mail(BUDI, "budi-1@example.com", "Lampu jalan mati")
    return [
        complaint,
        complaint,  # the same message again, in the same batch
        _mail(
            BUDI,
            "budi-2@example.com",
            "Re: Lampu jalan mati",
            "In-Reply-To: <budi-1@example.com>\n",
        ),
        b"\r\n",  # nothing to parse
        _mail("", "nobody-1@example.com", "Tanpa pengirim"),
        _mail(
            SITI, "away-1@example.com", "Sedang cuti", "Auto-Submitted: auto-replied\n"
        ),
        *(
            _mail(SITI, f"siti-{n}@example.com", f"Jalan rusak RT {n}")
            for n in range(6)
        ),
    ]


OUTCOMES = [
    Outcome.TICKET,
    Outcome.DUPLICATE,
    Outcome.FOLLOW_UP,
    Outcome.QUARANTINED,
    Outcome.QUARANTINED,
    Outcome.AUTOMATIC,
    *[Outcome.TICKET] * 6,
]


def _reference(seq: int) -> str:
    return str(Reference("PRG", 2026, seq))


REFERENCES = [
    _reference(1),
    _reference(1),
    _reference(1),
    None,
    None,
    None,
    *(_reference(n) for n in range(2, 8)),
]


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    return build_app(tmp_path, MovableClock())


def _kept(app: App) -> dict[str, object]:
    with app.sessions() as session:
        return {
            "tickets": session.scalar(select(func.count(Ticket.id))),
            "budi_messages": session.scalar(
                select(func.count(Message.id))
                .join(Ticket)
                .where(Ticket.reference == _reference(1))
                .where(Message.direction == "in")
            ),
            "acknowledgements": session.scalar(
                select(func.count(Message.id)).where(Message.kind == "acknowledgement")
            ),
            "withheld": session.scalar(
                select(func.count(Event.id)).where(
                    Event.action == "acknowledgement_withheld"
                )
            ),
            "reasons": sorted(
                session.scalars(
                    select(InboundMail.reason).where(
                        InboundMail.status == "quarantined"
                    )
                )
            ),
        }


EXPECTED = {
    "tickets": 7,
    "budi_messages": 2,
    "acknowledgements": 6,
    "withheld": 1,
    "reasons": ["empty message", "no usable sender address in From"],
}


def _commits(app: App) -> list[int]:
    counted = [0]
    engine = app.sessions.kw["bind"]
    event.listen(engine, "commit", lambda _conn: counted.__setitem__(0, counted[0] + 1))
    return counted


def test_a_batch_sees_its_own_rows_and_commits_once(office: App) -> None:
    commits = _commits(office)

    results = office.intake.receive_batch([(raw, ORIGIN) for raw in _messages()])

    assert [r.outcome for r in results] == OUTCOMES
    assert [r.reference for r in results] == REFERENCES
    assert commits == [1]
    assert results[1].inbound_id == results[0].inbound_id
    assert len({r.inbound_id for r in results}) == 11
    assert _kept(office) == EXPECTED


def test_one_message_at_a_time_keeps_the_same(office: App) -> None:
    commits = _commits(office)

    results = [office.intake.receive(raw, ORIGIN) for raw in _messages()]

    assert [r.outcome for r in results] == OUTCOMES
    assert [r.reference for r in results] == REFERENCES
    # One per message: a quarantined message's first transaction rolls back,
    # and its record is committed in a transaction of its own.
    assert commits == [12]
    assert _kept(office) == EXPECTED


def test_a_failure_after_writing_takes_the_batch_one_at_a_time(
    office: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A real failure halfway through a batch: the unit notice about a
    # follow-up has no template, so only the follow-up cannot be written.
    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    for part in templates.glob("staff/follow_up.*"):
        part.unlink()
    office.intake.filing.letters.renderer = Renderer(templates, timezone="Asia/Jakarta")
    batch = _messages()[:3] + _messages()[6:8]
    caplog.set_level(logging.INFO, logger="mailbot")

    results = office.intake.receive_batch([(raw, ORIGIN) for raw in batch])

    assert [r.outcome for r in results] == [
        Outcome.TICKET,
        Outcome.DUPLICATE,
        Outcome.QUARANTINED,
        Outcome.TICKET,
        Outcome.TICKET,
    ]
    assert [r.reference for r in results] == [
        _reference(1),
        _reference(1),
        None,
        _reference(2),
        _reference(3),
    ]
    assert results[2].reason.startswith("template staff/follow_up")
    rolled_back = [r for r in caplog.records if "rolled back" in r.getMessage()]
    assert [r.getMessage()[:43] for r in rolled_back] == [
        "batch of 5 messages rolled back (MessageErr"
    ]
    # The rolled-back batch had created ticket 1 already; only kept tickets log.
    created = [r.getMessage() for r in caplog.records if ": created" in r.getMessage()]
    assert created == [
        f"ticket {_reference(n)}: created, routed to ekbang" for n in (1, 2, 3)
    ]


def test_results_of_a_batch_carry_the_ids_of_their_records(office: App) -> None:
    results: list[Result] = office.intake.receive_batch(
        [(raw, ORIGIN) for raw in _messages()[6:]]
    )

    with office.sessions() as session:
        stored = {
            row.id: row.ticket.reference if row.ticket else None
            for row in session.scalars(select(InboundMail))
        }
    assert stored == {r.inbound_id: r.reference for r in results}


OPERATOR = "operator@porong.example.go.id"
STAFF = f"""
[[staff]]
email = "{OPERATOR}"
name = "Operator CS"
role = "operator"
"""


def test_replies_by_subject_reference_find_a_ticket_of_the_same_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    office = build_app(tmp_path, MovableClock(), STAFF)
    reference = _reference(1)
    batch = [
        _mail(BUDI, "budi-1@example.com", "Lampu jalan mati"),
        _mail(BUDI, "budi-2@example.com", f"Re: [{reference}] Lampu jalan mati"),
        _mail(
            f"Operator CS <{OPERATOR}>",
            "op-1@porong.example.go.id",
            f"Re: [{reference}] Pengaduan baru",
        ).replace(b"Lampu PJU mati", b"#catatan Sudah dicek petugas. Lampu PJU mati"),
    ]

    results = office.intake.receive_batch([(raw, ORIGIN) for raw in batch])

    assert [(r.outcome, r.reference) for r in results] == [
        (Outcome.TICKET, reference),
        (Outcome.FOLLOW_UP, reference),
        (Outcome.STAFF, reference),
    ]
    with office.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert [(e.actor, e.action) for e in ticket.events] == [
            ("mailbot", "created"),
            ("mailbot", "follow_up"),
            (OPERATOR, "note"),
            (OPERATOR, "status"),
        ]


def _long_references() -> str:
    # The complaint is cited first, then 55 ids of a mailing list's thread:
    # beyond the 50 newest ids threading looks at.
    older = " ".join(f"<older{n}@list.example>" for n in range(1, 56))
    return (
        "In-Reply-To: <older55@list.example>\n"
        f"References: <budi-1@example.com> {older}\n"
    )


def _two_tickets_cited() -> str:
    # Cites both of Budi's complaints, In-Reply-To the older one: the newest
    # kept message among the cited ones names the ticket.
    return (
        "In-Reply-To: <budi-1@example.com>\n"
        "References: <budi-2@example.com> <budi-1@example.com>\n"
    )


@pytest.mark.parametrize(
    ("headers", "threaded_to"),
    [
        (_long_references(), None),
        (_two_tickets_cited(), 2),
    ],
    ids=["more-than-50-cited-ids", "two-tickets-cited"],
)
def test_threading_by_message_id_is_the_same_in_a_batch_and_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    headers: str,
    threaded_to: int | None,
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    messages = [
        _mail(BUDI, "budi-1@example.com", "Jalan rusak di Desa Kesambi"),
        _mail(BUDI, "budi-2@example.com", "Sampah menumpuk di pasar"),
        _mail(BUDI, "budi-3@example.com", "Re: Jalan rusak", headers),
    ]
    batched = build_app(tmp_path / "batched", MovableClock())
    alone = build_app(tmp_path / "alone", MovableClock())

    in_batch = batched.intake.receive_batch([(raw, ORIGIN) for raw in messages])
    one_by_one = [alone.intake.receive(raw, ORIGIN) for raw in messages]

    expected = (
        (Outcome.FOLLOW_UP, _reference(threaded_to))
        if threaded_to is not None
        else (Outcome.TICKET, _reference(3))
    )
    assert (in_batch[2].outcome, in_batch[2].reference) == expected
    assert (one_by_one[2].outcome, one_by_one[2].reference) == expected


def test_a_long_fetch_is_written_a_hundred_messages_per_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    office = build_app(tmp_path, MovableClock(), lean=True)
    commits = _commits(office)
    messages = [
        (
            _mail(f"Warga {n} <warga{n}@example.com>", f"w{n}@example.com", "Banjir"),
            ORIGIN,
        )
        for n in range(250)
    ]

    results = office.intake.receive_batch(messages)

    assert commits == [3]
    assert [r.reference for r in results] == [_reference(n) for n in range(1, 251)]
