"""Citizen conversation: what a complainant's reply to a closed ticket becomes.

Reads the ticket's state and history; writes nothing. A reply to an open ticket
is a follow-up; to an answered or rejected ticket within ``[workflow]
reopen_days`` of its closing it reopens the ticket; later it starts a new
ticket that links the old reference.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta

from mailbot.models import Ticket, TicketStatus

CLOSING_ACTIONS = ("answered", "rejected")


# Words of a reply that only thanks or agrees ("Terima kasih banyak, Pak!").
_THANKS_TEXT = (
    "terima kasih makasih trims trimakasih terimakasih tq thanks thank you thx "
    "banyak sekali atas bantuannya tanggapannya responnya infonya informasinya "
    "jawabannya perhatiannya pak bu bapak ibu mas mbak ok oke okay baik siap sip "
    "mantap alhamdulillah salam hormat saya kami nggih njih sudah beres selesai "
    "wassalam sama sama-sama matur nuwun suwun sanget min admin wassalamualaikum "
    "assalamualaikum wr wb makasi maturnuwun matursuwun sangat membantu cepat "
    "responsif"
)
_THANKS_WORDS = frozenset(_THANKS_TEXT.split())
_WORD = re.compile(r"[\w-]+")
_SEPARATORS = re.compile(r"[._+\-\d]+")
_THANKS_LIMIT = 25


class Continuation(enum.StrEnum):
    FOLLOW_UP = "follow_up"
    REOPEN = "reopen"
    NEW_TICKET = "new_ticket"
    # A closed ticket's complainant only thanks: kept, nothing reopened.
    THANKS = "thanks"


def continuation(
    ticket: Ticket, now: datetime, reopen_days: int, text: str = ""
) -> Continuation:
    """How a complainant's reply continues this ticket."""
    if ticket.status not in (TicketStatus.ANSWERED, TicketStatus.REJECTED):
        return Continuation.FOLLOW_UP

    closed = closed_at(ticket)
    if now - closed > timedelta(days=reopen_days):
        return Continuation.NEW_TICKET
    # Without a display name, the address's local part ("siti.aminah") names
    # whoever signs the thanks.
    local = _SEPARATORS.sub(" ", ticket.complainant_email.partition("@")[0])
    if only_thanks(text, signed=f"{ticket.complainant_name} {local}"):
        return Continuation.THANKS
    return Continuation.REOPEN


def only_thanks(text: str, *, signed: str = "") -> bool:
    """Whether a short reply does nothing but thank or agree.

    ``signed`` is the complainant's name, which may sign the thanks.
    """
    # Only words of thanks, and no question: "Sudah selesai, Pak?" doubts.
    words = _WORD.findall(text.lower())
    if not words or len(words) > _THANKS_LIMIT or "?" in text:
        return False
    allowed = _THANKS_WORDS | set(_WORD.findall(signed.lower()))
    return all(word in allowed for word in words)


def closed_at(ticket: Ticket) -> datetime:
    """When the ticket was last answered or rejected."""
    for event in reversed(ticket.events):
        if event.action in CLOSING_ACTIONS:
            return event.at
    return ticket.answered_at or ticket.updated_at
