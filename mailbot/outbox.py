"""The outbox: outgoing mail is queued in the ticket's transaction, then delivered.

Queueing writes the composed bytes, so a rerun of ``send`` delivers exactly what
was decided when the ticket changed. Delivery claims one row at a time in a
committed transaction (so several senders never take the same row, on SQLite
too), hands it to the transport outside any transaction, and records the
server's answer; a temporary failure
is retried with exponential backoff up to a cap, then the row is ``failed``. A
server that cannot be reached costs no attempt: letters wait for it up to
``outage_lifetime_hours``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from mailbot.clock import Clock
from mailbot.commitlog import on_commit
from mailbot.compose import Letter, compose
from mailbot.config import Settings, SmtpConfig
from mailbot.db import SessionFactory
from mailbot.errors import CommandError, DeliveryError
from mailbot.leases import holder_is_dead, holder_name
from mailbot.models import Direction, OutboxItem, OutboxStatus, Ticket
from mailbot.references import Reference
from mailbot.signing import Signer
from mailbot.tickets import MessageRecord, add_message
from mailbot.transport import Transport

log = logging.getLogger(__name__)

# A letter waiting this long for an unreachable server makes the outage an error.
OUTAGE_ERROR_MINUTES = 30
# A claimed letter is passed over by other senders this long: more than the
# longest SMTP exchange ([smtp] timeout_seconds is at most 240).
CLAIM_SECONDS = 300
CLAIM_CANDIDATES = 20
SENDING = "sending by "
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


@dataclass(frozen=True)
class Sender:
    """Who our letters come from."""

    address: str
    name: str
    # The zone of the Date header: recipients see the office's own time.
    timezone: str = "UTC"

    @classmethod
    def of_office(cls, settings: Settings) -> Sender:
        """Who the office's automatic mail comes from."""
        smtp, office = settings.smtp, settings.office
        if smtp is not None:
            return cls(smtp.from_address, smtp.from_name, office.timezone)
        return cls(office.email, f"Layanan Pengaduan {office.name}", office.timezone)


def queue(
    session: Session,
    ticket: Ticket,
    letter: Letter,
    *,
    reference: Reference,
    signer: Signer,
    sender: Sender,
    now: datetime,
) -> OutboxItem:
    """Compose a letter of a ticket and queue it, in the caller's transaction."""
    message_id = signer.make_id(reference, letter.to[0], letter.kind)
    record = MessageRecord(
        direction=Direction.OUT,
        kind=letter.kind,
        message_id=message_id,
        sender=sender.address,
        recipients=letter.to,
        subject=letter.subject,
        text=letter.body.text,
        at=now,
    )
    message = add_message(session, ticket, record)
    item = queue_letter(session, letter, message_id=message_id, sender=sender, now=now)
    item.ticket, item.message = ticket, message
    on_commit(session, log.info, "ticket %s: %s queued", ticket.reference, letter.kind)
    return item


def queue_letter(
    session: Session, letter: Letter, *, message_id: str, sender: Sender, now: datetime
) -> OutboxItem:
    """Compose any letter and put it in the outbox, due now."""
    raw = compose(
        letter,
        message_id=message_id,
        from_address=sender.address,
        from_name=sender.name,
        date=now.astimezone(ZoneInfo(sender.timezone)),
    )
    item = OutboxItem(
        kind=letter.kind,
        message_id=message_id,
        envelope_from=sender.address,
        recipients=list(letter.to),
        raw=raw,
        status=OutboxStatus.QUEUED,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(item)
    return item


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    deferred: int
    failed: int


def backoff(attempts: int, settings: SmtpConfig) -> timedelta:
    """How long to wait after this many failed attempts."""
    seconds = settings.retry_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.retry_cap_seconds))


def deliver_due(
    sessions: SessionFactory,
    transport: Transport,
    settings: SmtpConfig,
    clock: Clock,
    *,
    limit: int = 500,
    interrupted: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Deliver queued mail whose time has come, one claimed row at a time.

    ``interrupted`` is asked between letters: a service told to stop, or woken
    by new mail, must not wait for a whole backlog to go out first.
    """
    sent = deferred = failed = 0
    holder = holder_name()
    for turn in range(limit):
        if turn and interrupted():
            break
        claim = _claim(sessions, holder, clock.now())
        if claim is None:
            break
        outcome, unreachable = _deliver_claimed(
            sessions, claim, transport, settings, clock
        )
        sent += outcome == OutboxStatus.SENT
        failed += outcome == OutboxStatus.FAILED
        deferred += outcome == OutboxStatus.QUEUED
        if unreachable:
            # A server that is down or hangs would cost every other letter a
            # timeout and an attempt; they wait for the next run untouched.
            _report_outage(sessions, clock.now())
            break
    if sent or deferred or failed:
        log.info("outbox: %d sent, %d deferred, %d failed", sent, deferred, failed)
    return DeliveryReport(sent, deferred, failed)


def _report_outage(sessions: SessionFactory, now: datetime) -> None:
    # No letter can say the server is down, the alert letters included: the
    # log is the alarm, and an outage that lasts is logged as an error.
    with sessions() as session:
        waiting, oldest = session.execute(
            select(func.count(OutboxItem.id), func.min(OutboxItem.created_at)).where(
                OutboxItem.status == OutboxStatus.QUEUED
            )
        ).one()
    minutes = int((now - oldest).total_seconds() // 60) if oldest else 0
    level = logging.ERROR if minutes >= OUTAGE_ERROR_MINUTES else logging.WARNING
    log.log(
        level,
        "outbox: SMTP server unreachable; %d letters wait, the oldest for %d min",
        waiting,
        minutes,
    )


@dataclass(frozen=True)
class _Claim:
    """A letter this process took to send, and the due time it had."""

    item_id: int
    due: datetime


def _claim(sessions: SessionFactory, holder: str, now: datetime) -> _Claim | None:
    """Take the oldest due letter, in a transaction committed before SMTP.

    The claim moves the letter's due time CLAIM_SECONDS ahead and names this
    process in ``last_reply``: another sender (a second worker, a `send` by
    hand beside `run`, on SQLite too, where row locks do not exist) passes it
    over. A claim whose process died on this host is taken over at once; one
    from a lost host lapses with its due time.
    """
    with sessions.begin() as session:
        for item_id, due in _candidates(session, now):
            taken = cast(
                CursorResult[Any],
                session.execute(
                    update(OutboxItem)
                    .where(
                        OutboxItem.id == item_id,
                        OutboxItem.status == OutboxStatus.QUEUED,
                        OutboxItem.next_attempt_at == due,
                    )
                    .values(
                        next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS),
                        last_reply=f"{SENDING}{holder}",
                    )
                ),
            )
            if taken.rowcount == 1:
                return _Claim(item_id, min(due, now))
    return None


def _candidates(session: Session, now: datetime) -> list[tuple[int, datetime]]:
    due = session.execute(
        select(OutboxItem.id, OutboxItem.next_attempt_at)
        .where(OutboxItem.status == OutboxStatus.QUEUED)
        .where(OutboxItem.next_attempt_at <= now)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(CLAIM_CANDIDATES)
        .with_for_update(skip_locked=True)
    ).all()
    orphaned = session.execute(
        select(OutboxItem.id, OutboxItem.next_attempt_at, OutboxItem.last_reply)
        .where(OutboxItem.status == OutboxStatus.QUEUED)
        .where(OutboxItem.next_attempt_at > now)
        .where(OutboxItem.last_reply.startswith(SENDING))
        .order_by(OutboxItem.id)
        .with_for_update(skip_locked=True)
    ).all()
    dead = [
        (item_id, at)
        for item_id, at, reply in orphaned
        if holder_is_dead(reply.removeprefix(SENDING))
    ]
    return [*dead, *((item_id, at) for item_id, at in due)]


def _deliver_claimed(
    sessions: SessionFactory,
    claim: _Claim,
    transport: Transport,
    settings: SmtpConfig,
    clock: Clock,
) -> tuple[OutboxStatus, bool]:
    """Hand a claimed letter to the server outside any transaction, then record
    the answer; the letter's new state, and whether the server was unreachable.

    A database that fails after the server took the letter (locked, disk
    full) leaves the claim: the letter goes again only once it lapses.
    """
    with sessions() as session:
        item = session.get(OutboxItem, claim.item_id)
        assert item is not None  # claimed rows are never deleted
        envelope = (item.envelope_from, list(item.recipients), item.raw)
    try:
        reply, error = transport.deliver(*envelope), None
    except DeliveryError as exc:
        reply, error = "", exc
    except Exception:
        # Not the server's answer but our own failure: the letter is free
        # again at once rather than when the claim lapses.
        _release(sessions, claim)
        raise

    with sessions.begin() as session:
        item = session.get(OutboxItem, claim.item_id)
        assert item is not None
        item.attempts += 1
        item.next_attempt_at = claim.due
        if error is not None:
            return _record_failure(
                item, error, settings, clock.now()
            ), error.unreachable
        return _record_sent(item, reply, clock.now()), False


def _release(sessions: SessionFactory, claim: _Claim) -> None:
    with sessions.begin() as session:
        item = session.get(OutboxItem, claim.item_id)
        if item is not None and item.last_reply.startswith(SENDING):
            item.next_attempt_at, item.last_reply = claim.due, ""


def _record_sent(item: OutboxItem, reply: str, now: datetime) -> OutboxStatus:
    item.status = OutboxStatus.SENT
    item.sent_at = now
    item.last_reply = reply
    if item.ticket is not None:
        log.info(
            "ticket %s: %s sent (outbox %d)", item.ticket.reference, item.kind, item.id
        )
    else:  # the digest and mailbox alerts belong to no ticket
        log.info("outbox %d: %s sent", item.id, item.kind)
    return OutboxStatus.SENT


def _record_failure(
    item: OutboxItem, exc: DeliveryError, settings: SmtpConfig, now: datetime
) -> OutboxStatus:
    item.last_reply = exc.reply
    if exc.unreachable:
        return _wait_out_outage(item, settings, now)

    if exc.permanent or item.attempts >= settings.max_attempts:
        item.status = OutboxStatus.FAILED
        log.warning(
            "outbox %d (%s): failed after %d attempts: %s",
            item.id,
            item.kind,
            item.attempts,
            _without_addresses(exc.reply),
        )
        return OutboxStatus.FAILED

    item.next_attempt_at = now + backoff(item.attempts, settings)
    log.warning(
        "outbox %d (%s): attempt %d deferred: %s",
        item.id,
        item.kind,
        item.attempts,
        _without_addresses(exc.reply),
    )
    return OutboxStatus.QUEUED


def _without_addresses(reply: str) -> str:
    # The server's words name the recipient, a citizen as often as not; the
    # outbox row keeps them whole for `outbox list`, the log does not.
    return _ADDRESS.sub("<address>", reply)


def _wait_out_outage(
    item: OutboxItem, settings: SmtpConfig, now: datetime
) -> OutboxStatus:
    # The server never answered: that is no attempt of the letter's. Its due
    # time stays, so the oldest letter is the one each run tries (one
    # connection a run) and the queue leaves in order once the server is back.
    item.attempts -= 1
    lifetime = timedelta(hours=settings.outage_lifetime_hours)
    if now - item.created_at >= lifetime:
        item.status = OutboxStatus.FAILED
        log.warning(
            "outbox %d (%s): failed: SMTP server unreachable for %g h",
            item.id,
            item.kind,
            settings.outage_lifetime_hours,
        )
        return OutboxStatus.FAILED

    return OutboxStatus.QUEUED


def failed_ids(session: Session) -> list[int]:
    """Every letter given up, oldest first."""
    query = (
        select(OutboxItem.id)
        .where(OutboxItem.status == OutboxStatus.FAILED)
        .order_by(OutboxItem.id)
    )
    return list(session.scalars(query))


def _refuse_a_live_claim(item: OutboxItem, now: datetime) -> None:
    # A sender may be talking to the server about it this minute: due now, a
    # second sender would deliver it again beside the first.
    reply = item.last_reply or ""
    if item.status != OutboxStatus.QUEUED or not reply.startswith(SENDING):
        return
    if item.next_attempt_at <= now or holder_is_dead(reply.removeprefix(SENDING)):
        return
    minutes = math.ceil((item.next_attempt_at - now).total_seconds() / 60)
    raise CommandError(
        f"outbox message {item.id} is being sent ({reply}); if it is still "
        f"queued in {minutes} min, its sender is gone and it goes again by itself"
    )


def retry(session: Session, item_id: int, now: datetime) -> OutboxItem:
    """Put a failed or deferred row back in the queue, due now (a queued one
    keeps an earlier due time); a letter a live sender holds is refused."""
    item = session.get(OutboxItem, item_id)
    if item is None:
        raise CommandError(f"no outbox message {item_id}")
    if item.status == OutboxStatus.SENT:
        raise CommandError(f"outbox message {item_id} was already sent")
    _refuse_a_live_claim(item, now)
    # Queued by hand: a fresh set of attempts, or the first refusal would
    # give it up again at once.
    log.info(
        "outbox %d (%s): queued again by hand after %d attempts",
        item.id,
        item.kind,
        item.attempts,
    )
    if (item.last_reply or "").startswith(SENDING):
        # A dead sender's claim: `outbox list` would go on naming it.
        item.last_reply = "queued again by hand"
    # Due now, or sooner if it was: a queued letter keeps its place in line.
    due = item.next_attempt_at
    item.next_attempt_at = (
        due if item.status == OutboxStatus.QUEUED and due < now else now
    )
    item.status = OutboxStatus.QUEUED
    item.attempts = 0
    return item
