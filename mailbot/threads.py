"""Threading: which ticket, if any, a received message continues.

In order of certainty: one of our signed Message-IDs in In-Reply-To/References;
any known Message-ID of a ticket there; a reference in the subject, which only
counts for the ticket's own complainant (a stranger who types a reference must
never reach, or learn anything of, that ticket). Filing applies the same rule to
a known Message-ID, and to a signed id whose letter went to someone other than
the sender.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.models import Message, Ticket
from mailbot.parsing import ParsedMail
from mailbot.pending import pending_rows
from mailbot.references import find_references, without_references
from mailbot.screening import complainant_address
from mailbot.signing import Signer

# Reply and forward prefixes of the mail clients staff and citizens use.
_PREFIXES = re.compile(
    r"^(?:\s*(?:re|aw|bls|balas|fw|fwd|tr|wg|antw)\s*(?:\[\d+\])?\s*:\s*)+",
    re.IGNORECASE,
)


# The titles our letters put before a ticket's subject (letters, deskletters,
# escalation): a reply to one of them must not open "Pengaduan diterima: ...".
_OUR_TITLES = re.compile(
    r"^\s*(?:pengaduan diterima|tanggapan atas pengaduan|pengaduan tidak dapat "
    r"diproses|balasan sistem|pengaduan baru|tambahan dari pelapor|dibuka kembali "
    r"oleh pelapor|disposisi pengaduan|mohon persetujuan tanggapan|pesan sistem|"
    r"pengingat batas tanggapan|pengingat persetujuan draf|pengaduan dibuka kembali|"
    r"identitas diterima)\s*:\s*",
    re.IGNORECASE,
)


def base_subject(subject: str, prefix: str) -> str:
    """The subject without reply prefixes, our titles and our references.

    A new ticket must not carry another ticket's reference, even one its sender
    typed: the reference would then travel in our letters about the new ticket.
    """
    cleaned = without_references(subject, prefix)
    while True:
        shorter = _OUR_TITLES.sub("", _PREFIXES.sub("", cleaned.strip()))
        if shorter == cleaned:
            break
        cleaned = shorter
    return " ".join(cleaned.split())


# The kinds of our letters that go to staff, never to the complainant.
STAFF_LETTERS = frozenset(
    {"unit_notification", "follow_up_notification", "approval_request"}
    | {"command_reply", "unit_message", "sla_reminder", "sla_escalation"}
    | {"staff_message"}
)

# How many cited Message-IDs, newest first, a reply is threaded by.
CITED_IDS_LIMIT = 50


class Link(enum.StrEnum):
    SIGNED_ID = "signed-id"
    MESSAGE_ID = "message-id"
    SUBJECT = "subject"
    # The complainant's own subject, its reference typed with a wrong digit.
    MISTYPED_SUBJECT = "subject, check digit corrected"


@dataclass(frozen=True)
class Thread:
    ticket: Ticket
    link: Link
    # True when a signed id shows the letter went to this very sender.
    addressed_to_sender: bool
    # The kind of our letter a signed id names ("acknowledgement", ...).
    letter_kind: str = ""

    @property
    def answers_a_staff_letter(self) -> bool:
        """Whether the message replies to a letter mailbot wrote to staff."""
        return self.link == Link.SIGNED_ID and self.letter_kind in STAFF_LETTERS


def find_thread(
    session: Session,
    mail: ParsedMail,
    signer: Signer,
    prefix: str,
    staff: Collection[str] = (),
) -> Thread | None:
    """The ticket this message belongs to, or None for a new conversation.

    ``staff`` are the addresses that may also thread by the subject's reference.
    """
    cited = _cited_ids(mail)
    writers = {mail.sender_address, complainant_address(mail)}
    return (
        _by_signed_id(session, mail, cited, signer)
        or _by_message_id(session, cited, writers)
        or _by_subject(session, mail, prefix, staff)
    )


def _cited_ids(mail: ParsedMail) -> list[str]:
    # Newest first: In-Reply-To, then References from the end.
    ordered = [*mail.in_reply_to, *reversed(mail.references)]
    return list(dict.fromkeys(i for i in ordered if i))


def _by_signed_id(
    session: Session, mail: ParsedMail, cited: list[str], signer: Signer
) -> Thread | None:
    for message_id in cited:
        signed = signer.read_id(message_id)
        if signed is None:
            continue
        ticket = _by_reference(session, str(signed.reference))
        if ticket is not None:
            addressed = signed.addressed_to(signer, mail.sender_address)
            return Thread(ticket, Link.SIGNED_ID, addressed, signed.kind)
    return None


def _by_message_id(
    session: Session, cited: list[str], writers: Collection[str]
) -> Thread | None:
    # The newest kept message among the cited ones names the ticket, whatever
    # the order of the headers; only the newest ids count, as a bound. When a
    # cited id is on several tickets (someone reused it), the ticket of the
    # writer's own complaint wins.
    wanted = cited[:CITED_IDS_LIMIT]
    if not wanted:
        return None
    # A message of this batch is newer than any the database holds, and the
    # notes keep the batch's messages in the order they were added.
    pending, newest = pending_rows(session).messages, set(wanted)
    found = [t for i, t in reversed(pending) if i in newest]
    found += session.scalars(
        select(Ticket)
        .join(Message, Message.ticket_id == Ticket.id)
        .where(Message.message_id.in_(wanted))
        .order_by(Message.id.desc())
        .limit(CITED_IDS_LIMIT)
    )
    if not found:
        return None
    own = next((t for t in found if t.complainant_email in writers), found[0])
    return Thread(own, Link.MESSAGE_ID, False)


def _by_subject(
    session: Session, mail: ParsedMail, prefix: str, staff: Collection[str]
) -> Thread | None:
    sender = mail.sender_address
    valid = find_references(mail.subject, prefix)
    for reference in valid:
        ticket = _by_reference(session, str(reference))
        if ticket is None:
            continue
        if sender == ticket.complainant_email or sender in staff:
            return Thread(ticket, Link.SUBJECT, False)

    # A mistyped digit is trusted only from the ticket's own complainant: the
    # year and number could otherwise name anybody's ticket.
    for reference in find_references(mail.subject, prefix, checked=False):
        if reference in valid:
            continue
        ticket = _by_reference(session, str(reference))
        if ticket is not None and sender == ticket.complainant_email:
            return Thread(ticket, Link.MISTYPED_SUBJECT, False)
    return None


def _by_reference(session: Session, reference: str) -> Ticket | None:
    pending = pending_rows(session).tickets.get(reference)
    if pending is not None:
        return pending
    return session.scalar(select(Ticket).where(Ticket.reference == reference))
