"""The Camat's daily digest: one day's figures and the open backlog.

Reads tickets, events, the outbox, intake records and mailbox state with SQL
aggregates (counts grouped in the database; response times from one sorted
column of durations), never loading ticket objects. Writes nothing but the
digest's outbox rows, keyed by the day so that a rerun queues nothing twice.
Citizens appear by reference and name only; subjects are masked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from mailbot.config import Settings
from mailbot.errors import ConfigError
from mailbot.identity import mask
from mailbot.models import (
    Event,
    InboundMail,
    InboundStatus,
    MailboxIncident,
    MailboxState,
    OutboxItem,
    OutboxStatus,
    Ticket,
    TicketStatus,
)
from mailbot.rendering import DAYS, MONTHS

log = logging.getLogger(__name__)

OPEN_STATES = (TicketStatus.RECEIVED, TicketStatus.IN_PROGRESS)
# Another step records mail whose From is ours or a staff address but fails
# authentication under this action; zero until it does.
FORGED_SENDER = "forged_sender"


@dataclass(frozen=True)
class UnitLoad:
    """Open tickets of one unit."""

    code: str
    name: str
    open: int
    overdue: int


@dataclass(frozen=True)
class OverdueTicket:
    """One ticket past its due time, as the digest lists it."""

    reference: str
    unit: str
    age: timedelta
    late_by: timedelta
    subject: str
    escalation_step: int


@dataclass(frozen=True)
class Undelivered:
    """An acknowledgement the citizen never got: staff should phone."""

    reference: str
    complainant_name: str
    queued_at: datetime
    reason: str


@dataclass(frozen=True)
class AccountHealth:
    """One mailbox as intake last saw it."""

    account: str
    address: str
    last_success_at: datetime | None
    last_error: str
    failures: int
    incident_open: bool
    # Seen on the server by the last poll but not imported: a poll that failed
    # halfway leaves these for the next one.
    waiting: int = 0


@dataclass(frozen=True)
class DayFigures:
    """What happened on the reported day."""

    received: int
    answered: int
    rejected: int
    answered_on_time: int
    median_response: timedelta | None
    slowest_response: timedelta | None
    automatic: int
    forged: int
    # Tickets the complainant reopened, and reopened ones answered again: the
    # figures above count a ticket's first answer only.
    reopened: int = 0
    answered_again: int = 0


@dataclass(frozen=True)
class Backlog:
    """The open tickets at the time the digest is made."""

    open: int
    overdue: int
    units: tuple[UnitLoad, ...]
    overdue_tickets: tuple[OverdueTicket, ...]
    waiting_identity: int


@dataclass(frozen=True)
class Digest:
    """Everything the digest shows."""

    day: date
    generated_at: datetime
    figures: DayFigures
    backlog: Backlog
    undelivered: tuple[Undelivered, ...]
    undelivered_total: int
    accounts: tuple[AccountHealth, ...]


def day_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The UTC start and end of a calendar day in the office's zone."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def yesterday(now: datetime, timezone: str) -> date:
    """The day before ``now`` in the office's zone."""
    return now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


def format_day(day: date) -> str:
    """A date in Indonesian: ``Rabu, 2 Desember 2026``."""
    return f"{DAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year}"


def in_service_by(session: Session, settings: Settings, day: date) -> bool:
    """Whether mailbot had received anything before ``day`` ended.

    The first morning after installation would otherwise bring the Camat a
    digest of a day mailbot never saw, full of zeros.
    """
    _, end = day_window(day, settings.office.timezone)
    for received_at in (InboundMail.received_at, Ticket.received_at):
        earlier = select(received_at).where(received_at < end).limit(1)
        if session.scalar(earlier) is not None:
            return True
    return False


def compute_digest(
    session: Session, settings: Settings, day: date, now: datetime
) -> Digest:
    """The digest of ``day`` with the backlog as it stands at ``now``."""
    start, end = day_window(day, settings.office.timezone)
    return Digest(
        day=day,
        generated_at=now,
        figures=_day_figures(session, start, end),
        backlog=_backlog(session, settings, now),
        undelivered=_undelivered(session, settings.digest.overdue_rows),
        undelivered_total=_count(session, select(func.count()).where(_FAILED_ACK)),
        accounts=_accounts(session, settings, start, end),
    )


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(query) or 0)


def _day_figures(session: Session, start: datetime, end: datetime) -> DayFigures:
    in_day = and_(Ticket.answered_at >= start, Ticket.answered_at < end)
    received = select(func.count(Ticket.id)).where(
        Ticket.received_at >= start, Ticket.received_at < end
    )
    answered = select(func.count(Ticket.id)).where(in_day)
    first_due = func.coalesce(Ticket.first_due_at, Ticket.due_at)
    on_time = answered.where(Ticket.answered_at <= first_due)
    durations = _response_times(session, start, end)
    return DayFigures(
        received=_count(session, received),
        answered=_count(session, answered),
        rejected=_rejected(session, start, end),
        answered_on_time=_count(session, on_time),
        median_response=_median(durations),
        slowest_response=durations[-1] if durations else None,
        automatic=_automatic(session, start, end),
        forged=_events(session, FORGED_SENDER, start, end),
        reopened=_events(session, "reopened", start, end),
        answered_again=_answered_again(session, start, end),
    )


def _rejected(session: Session, start: datetime, end: datetime) -> int:
    # tickets.change_status writes "old -> new" in the status event's detail.
    query = select(func.count(func.distinct(Event.ticket_id))).where(
        Event.action == "status",
        Event.detail.like(f"% -> {TicketStatus.REJECTED}"),
        Event.at >= start,
        Event.at < end,
    )
    return _count(session, query)


def _events(session: Session, action: str, start: datetime, end: datetime) -> int:
    query = select(func.count(Event.id)).where(
        Event.action == action, Event.at >= start, Event.at < end
    )
    return _count(session, query)


def _answered_again(session: Session, start: datetime, end: datetime) -> int:
    # A first answer's event has the ticket's answered_at; a later one is after.
    query = (
        select(func.count(Event.id))
        .join(Ticket, Event.ticket_id == Ticket.id)
        .where(
            Event.action == "answered",
            Event.at >= start,
            Event.at < end,
            Event.at > Ticket.answered_at,
        )
    )
    return _count(session, query)


def _automatic(session: Session, start: datetime, end: datetime) -> int:
    query = select(func.count(InboundMail.id)).where(
        InboundMail.status == InboundStatus.AUTOMATIC,
        InboundMail.received_at >= start,
        InboundMail.received_at < end,
    )
    return _count(session, query)


def _response_times(
    session: Session, start: datetime, end: datetime
) -> list[timedelta]:
    rows = session.execute(
        select(Ticket.received_at, Ticket.answered_at).where(
            Ticket.answered_at >= start, Ticket.answered_at < end
        )
    )
    return sorted(answered - received for received, answered in rows if answered)


def _median(durations: list[timedelta]) -> timedelta | None:
    if not durations:
        return None
    middle = len(durations) // 2
    if len(durations) % 2:
        return durations[middle]
    return (durations[middle - 1] + durations[middle]) / 2


def _backlog(session: Session, settings: Settings, now: datetime) -> Backlog:
    overdue = case((Ticket.due_at < now, 1), else_=0)
    rows = session.execute(
        select(Ticket.unit_code, func.count(Ticket.id), func.sum(overdue))
        .where(Ticket.status.in_(OPEN_STATES))
        .group_by(Ticket.unit_code)
    )
    counts = {code: (int(n), int(late or 0)) for code, n, late in rows}
    units = tuple(
        UnitLoad(u.code, u.name, *counts.get(u.code, (0, 0))) for u in settings.units
    )
    waiting = select(func.count(Ticket.id)).where(
        Ticket.status.in_(OPEN_STATES), Ticket.identity_provided.is_(False)
    )
    return Backlog(
        open=sum(n for n, _ in counts.values()),
        overdue=sum(late for _, late in counts.values()),
        units=units,
        overdue_tickets=_overdue(session, now, settings.digest.overdue_rows),
        waiting_identity=_count(session, waiting),
    )


def _overdue(session: Session, now: datetime, limit: int) -> tuple[OverdueTicket, ...]:
    rows = session.execute(
        select(
            Ticket.reference,
            Ticket.unit_code,
            Ticket.received_at,
            Ticket.due_at,
            Ticket.subject,
            Ticket.escalation_step,
        )
        .where(Ticket.status.in_(OPEN_STATES), Ticket.due_at < now)
        .order_by(Ticket.due_at, Ticket.id)
        .limit(limit)
    )
    return tuple(
        OverdueTicket(ref, unit, now - received, now - due, mask(subject), step)
        for ref, unit, received, due, subject, step in rows
    )


_FAILED_ACK = and_(
    OutboxItem.status == OutboxStatus.FAILED, OutboxItem.kind == "acknowledgement"
)


def _undelivered(session: Session, limit: int) -> tuple[Undelivered, ...]:
    rows = session.execute(
        select(
            Ticket.reference,
            Ticket.complainant_name,
            OutboxItem.created_at,
            OutboxItem.last_reply,
        )
        .join(Ticket, Ticket.id == OutboxItem.ticket_id)
        .where(_FAILED_ACK)
        .order_by(OutboxItem.created_at, OutboxItem.id)
        .limit(limit)
    )
    return tuple(Undelivered(*row) for row in rows)


def _accounts(
    session: Session, settings: Settings, start: datetime, end: datetime
) -> tuple[AccountHealth, ...]:
    states = {state.account: state for state in session.scalars(select(MailboxState))}
    opened = session.execute(
        select(MailboxIncident.account, func.count(MailboxIncident.id))
        .where(MailboxIncident.opened_at >= start, MailboxIncident.opened_at < end)
        .group_by(MailboxIncident.account)
    )
    failures = {name: int(count) for name, count in opened}
    still_open = set(
        session.scalars(
            select(MailboxIncident.account).where(MailboxIncident.closed_at.is_(None))
        )
    )
    rows = []
    for account in settings.accounts:
        state = states.get(account.name)
        rows.append(
            AccountHealth(
                account=account.name,
                address=account.inbox_address,
                last_success_at=state.last_success_at if state else None,
                last_error=state.last_error if state else "",
                failures=int(failures.get(account.name, 0)),
                incident_open=account.name in still_open,
                waiting=state.waiting if state else 0,
            )
        )
    return tuple(rows)


def recipients(settings: Settings) -> tuple[str, ...]:
    """Who gets the digest: ``[digest] to``, else every Camat in ``[[staff]]``."""
    found = settings.digest.to or settings.staff_with_role("camat")
    if not found:
        raise ConfigError("digest.to: no recipients, and no [[staff]] role 'camat'")
    return found
