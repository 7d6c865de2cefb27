"""Bounces: a delivery failure report is matched to the letter it returns.

Reads a received message that screening called a bounce: standard delivery
status notifications (RFC 3464, ``multipart/report``) and the common
non-standard ones (Postfix and qmail plain text, Exchange "Undeliverable:",
"Delivery Status Notification (Failure)"). Finds the outgoing letter by our
signed Message-ID anywhere in the report, else by the failed recipient and the
ticket reference; marks that outbox row failed with the server's diagnostic and
records an event on its ticket. Only a letter already sent can come back: anyone
can write a bounce, and one naming a queued letter must not cancel it. A bounce
never opens a ticket.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.commitlog import on_commit
from mailbot.models import OutboxItem, OutboxStatus, Ticket
from mailbot.parsing import ParsedMail
from mailbot.references import find_references
from mailbot.signing import Signer
from mailbot.tickets import record_event

log = logging.getLogger(__name__)

MAX_DIAGNOSTIC_CHARS = 300
_REPORT_TYPES = (
    "message/delivery-status",
    "message/global-delivery-status",
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
    "text/plain",
)
# The shape of our signed Message-IDs (see signing.py); verified before use.
_SIGNED_ID = re.compile(
    r"[a-z]{2,6}\d{10}\.r[0-9a-f]{10}\.k[a-z_]{1,24}\.n[0-9a-f]{8}"
    r"\.s[0-9a-f]{20}@[A-Za-z0-9.-]+[A-Za-z0-9]"
)
_DIAGNOSTIC = re.compile(
    r"^diagnostic-code:[ \t]*(?:[a-z-]+;)?[ \t]*(.+)$", re.I | re.M
)
_STATUS = re.compile(r"^status:[ \t]*([245]\.\d{1,3}\.\d{1,3})", re.I | re.M)
_SMTP_REPLY = re.compile(r"\b([45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*)$", re.M)
_ACTION = re.compile(r"^action:[ \t]*([a-z]+)", re.I | re.M)
_RECIPIENT_FIELD = re.compile(
    r"^(?:final|original)-recipient:[ \t]*(?:[a-z0-9-]+;)?[ \t]*"
    r"<?([^\s<>]+@[^\s<>]+)>?",
    re.I | re.M,
)
_FOLDED = re.compile(r"\r?\n[ \t]+")
# qmail and Postfix plain-text bounces list "<address>:" at the start of a line.
_LISTED_RECIPIENT = re.compile(r"^<([^\s<>]+@[^\s<>]+)>:", re.M)


@dataclass(frozen=True)
class Bounce:
    """What a delivery report says: which letters, to whom, and why."""

    signed_ids: tuple[str, ...]
    references: tuple[str, ...]
    recipients: tuple[str, ...]
    diagnostic: str
    failed: bool


def read_bounce(mail: ParsedMail, raw: bytes, prefix: str) -> Bounce:
    """Read the ids, references, recipients and diagnostic out of a report."""
    texts = [mail.subject, mail.text, *_report_texts(mail)]
    joined = "\n".join(texts)
    actions = {a.lower() for a in _ACTION.findall(joined)}
    return Bounce(
        signed_ids=tuple(dict.fromkeys(_SIGNED_ID.findall(joined))),
        references=tuple(
            dict.fromkeys(str(r) for r in find_references(joined, prefix))
        ),
        recipients=_recipients(joined, raw),
        diagnostic=_diagnostic(joined, mail.subject),
        # A report whose every action is "delayed" or "delivered" is no failure.
        failed=not actions or "failed" in actions,
    )


def handle_bounce(
    session: Session,
    mail: ParsedMail,
    raw: bytes,
    *,
    signer: Signer,
    prefix: str,
    now: datetime,
) -> Ticket | None:
    """Mark the bounced letter failed; the ticket it belongs to, if found."""
    bounce = read_bounce(mail, raw, prefix)
    item = _by_signed_id(session, bounce, signer) or _by_recipient(session, bounce)
    if item is None:
        on_commit(
            session,
            log.warning,
            "bounce matched no outgoing letter; kept as automatic mail",
        )
        return None

    ticket = session.get(Ticket, item.ticket_id) if item.ticket_id else None
    _record(session, item, ticket, bounce, now)
    return ticket


def _record(
    session: Session,
    item: OutboxItem,
    ticket: Ticket | None,
    bounce: Bounce,
    now: datetime,
) -> None:
    if bounce.failed:
        item.status = OutboxStatus.FAILED
        item.last_reply = f"bounced: {bounce.diagnostic}"[:2000]
    verb = "not delivered" if bounce.failed else "delivery delayed"
    detail = f"{item.kind} (outbox {item.id}) {verb}: {bounce.diagnostic}"
    if ticket is not None:
        record_event(session, ticket, "bounce", detail, at=now)
    where = ticket.reference if ticket is not None else "-"
    on_commit(session, log.warning, "ticket %s: outbox %d %s", where, item.id, verb)


def _report_texts(mail: ParsedMail) -> Iterable[str]:
    for attachment in mail.attachments:
        if attachment.content_type.lower() in _REPORT_TYPES:
            text = attachment.payload[:200_000].decode("utf-8", "replace")
            yield _FOLDED.sub(" ", text)


def _recipients(text: str, raw: bytes) -> tuple[str, ...]:
    found = [*_RECIPIENT_FIELD.findall(text), *_LISTED_RECIPIENT.findall(text)]
    found.extend(_failed_recipients_header(raw))
    return tuple(dict.fromkeys(a.strip().lower() for a in found if a.strip()))


def _failed_recipients_header(raw: bytes) -> list[str]:
    # Exim and Gmail name the failed addresses in the bounce's own header.
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    values = headers.get_all("X-Failed-Recipients") or []
    return [a for v in values for a in re.split(r"[\s,]+", str(v)) if "@" in a]


def _diagnostic(text: str, subject: str) -> str:
    for pattern in (_DIAGNOSTIC, _SMTP_REPLY, _STATUS):
        match = pattern.search(text)
        if match:
            return _one_line(match.group(1))
    return _one_line(subject) or "delivery failed"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_DIAGNOSTIC_CHARS]


def _by_signed_id(
    session: Session, bounce: Bounce, signer: Signer
) -> OutboxItem | None:
    for message_id in bounce.signed_ids:
        if signer.read_id(message_id) is None:
            continue
        item = session.scalar(
            select(OutboxItem).where(
                OutboxItem.message_id == message_id,
                OutboxItem.status == OutboxStatus.SENT,
            )
        )
        if item is not None:
            return item
    return None


def _by_recipient(session: Session, bounce: Bounce) -> OutboxItem | None:
    # Without our id, only a letter of a referenced ticket to a failed address.
    if not bounce.recipients:
        return None
    for reference in bounce.references:
        items = session.scalars(
            select(OutboxItem)
            .join(Ticket, Ticket.id == OutboxItem.ticket_id)
            .where(
                Ticket.reference == reference, OutboxItem.status == OutboxStatus.SENT
            )
            .order_by(OutboxItem.id.desc())
        )
        for item in items:
            if set(bounce.recipients) & {r.lower() for r in item.recipients}:
                return item
    return None
