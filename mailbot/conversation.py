"""Citizen conversation: what a complainant's reply to a closed ticket becomes.

Reads the ticket's state and history; writes nothing. A reply to an open ticket
is a follow-up; to an answered or rejected ticket within ``[workflow]
reopen_days`` of its closing it reopens the ticket; later it starts a new
ticket that links the old reference.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from mailbot.models import Ticket, TicketStatus

CLOSING_ACTIONS = ("answered", "rejected")


class Continuation(enum.StrEnum):
    FOLLOW_UP = "follow_up"
    REOPEN = "reopen"
    NEW_TICKET = "new_ticket"


def continuation(ticket: Ticket, now: datetime, reopen_days: int) -> Continuation:
    """How a complainant's reply continues this ticket."""
    if ticket.status not in (TicketStatus.ANSWERED, TicketStatus.REJECTED):
        return Continuation.FOLLOW_UP

    closed = closed_at(ticket)
    if now - closed <= timedelta(days=reopen_days):
        return Continuation.REOPEN
    return Continuation.NEW_TICKET


def closed_at(ticket: Ticket) -> datetime:
    """When the ticket was last answered or rejected."""
    for event in reversed(ticket.events):
        if event.action in CLOSING_ACTIONS:
            return event.at
    return ticket.answered_at or ticket.updated_at
