"""Auto-reply limit: how many automatic answers one address may get per window.

Two autoresponders can answer each other for ever, and a responder whose answers
look human passes every header check. So whatever screening lets through, an
address gets at most ``[intake] auto_reply_limit`` automatic answers per
``auto_reply_window_hours``; beyond that the ticket is still opened, but no
acknowledgement is queued, and the ticket's history says so. Counted from the
letters kept on the address's own tickets (every queued letter is also a message
of its ticket): our signed Message-IDs carry a digest of their recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from mailbot.commitlog import on_commit
from mailbot.config import IntakeConfig
from mailbot.letters import Correspondence, Received
from mailbot.models import Direction, Message, Ticket
from mailbot.pending import pending_rows
from mailbot.signing import Signer
from mailbot.tickets import record_event

log = logging.getLogger(__name__)

# Letters that answer a received message without a person deciding to send them.
AUTO_REPLY_KINDS = frozenset({"acknowledgement", "identity_received", "reopened"})


# Asked for every new ticket: built once, and run below the ORM.
_QUEUED_TO = (
    select(func.count(Message.id))
    .join(Ticket, Message.ticket_id == Ticket.id)
    .where(Ticket.complainant_email == bindparam("address"))
    .where(Message.direction == Direction.OUT)
    .where(Message.kind.in_(sorted(AUTO_REPLY_KINDS)))
    .where(Message.at >= bindparam("since"))
    .where(Message.message_id.like(bindparam("marker")))
)


def auto_replies_since(
    session: Session, signer: Signer, address: str, since: datetime
) -> int:
    """How many automatic answers were queued for this address since a moment."""
    address = address.strip().lower()
    digest = signer.recipient_digest(address)
    # An automatic answer goes to its ticket's complainant: starting from the
    # indexed address keeps this count from scanning every letter ever queued.
    values = {"address": address, "since": since, "marker": f"%.r{digest}.k%"}
    written = session.connection().execute(_QUEUED_TO, values).scalar() or 0
    # The answers this batch queued are not written yet: they are counted apart.
    letters = pending_rows(session).letters
    return written + sum(letters[(address, kind)] for kind in AUTO_REPLY_KINDS)


def acknowledge_within_limit(
    session: Session,
    letters: Correspondence,
    signer: Signer,
    ticket: Ticket,
    received: Received,
    *,
    limits: IntakeConfig,
    now: datetime,
) -> bool:
    """Queue the acknowledgement unless the complainant had enough; True if queued."""
    sent = _answers_in_window(session, signer, ticket, limits, now)
    if sent < limits.auto_reply_limit:
        letters.acknowledge(session, ticket, received, now)
        return True

    detail = (
        f"no acknowledgement: {sent} automatic answers to this address in the "
        f"last {limits.auto_reply_window_hours:g} h (limit {limits.auto_reply_limit})"
    )
    record_event(session, ticket, "acknowledgement_withheld", detail, at=now)
    on_commit(
        session,
        log.warning,
        "ticket %s: acknowledgement withheld, auto-reply limit reached",
        ticket.reference,
    )
    return False


def confirm_within_limit(
    session: Session,
    confirm: Callable[[Session, Ticket, Received, datetime], object],
    signer: Signer,
    ticket: Ticket,
    received: Received,
    *,
    limits: IntakeConfig,
    now: datetime,
) -> bool:
    """Queue a confirmation of a complainant's reply (``confirm``, a method of
    ``Correspondence``) unless they had enough automatic answers already."""
    sent = _answers_in_window(session, signer, ticket, limits, now)
    if sent >= limits.auto_reply_limit:
        on_commit(
            session,
            log.info,
            "ticket %s: confirmation withheld, auto-reply limit reached",
            ticket.reference,
        )
        return False

    confirm(session, ticket, received, now)
    return True


def _answers_in_window(
    session: Session,
    signer: Signer,
    ticket: Ticket,
    limits: IntakeConfig,
    now: datetime,
) -> int:
    since = now - timedelta(hours=limits.auto_reply_window_hours)
    return auto_replies_since(session, signer, ticket.complainant_email, since)
