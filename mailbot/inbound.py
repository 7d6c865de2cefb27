"""Inbound records: what intake writes about every received message.

Each message gets one ``InboundMail`` row, keyed by its Message-ID (or the digest
of its bytes), that ends with a disposition: ticket, follow-up, staff, automatic,
forged, duplicate or quarantined with its reason. Also the values intake hands
back (``Origin``, ``Outcome``, ``Result``) and the keeping of a received message
as a message of its ticket.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from mailbot.archive import ArchivedMail, archive_path
from mailbot.attachments import StoredAttachment
from mailbot.commitlog import on_commit
from mailbot.db import SessionFactory
from mailbot.errors import MessageError
from mailbot.letters import Received
from mailbot.models import SET_ASIDE, Direction, InboundMail, InboundStatus, Ticket
from mailbot.pending import note_inbound, pending_rows
from mailbot.tickets import MessageRecord, add_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a message came from."""

    account: str
    inbox_address: str
    source: str
    received_at: datetime | None = None


class Outcome(enum.StrEnum):
    TICKET = "ticket"
    FOLLOW_UP = "follow_up"
    STAFF = "staff"
    AUTOMATIC = "automatic"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    FORGED = "forged"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    inbound_id: int
    reference: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Disposition:
    """How a message ended, decided before its rows are written.

    A batch writes all its rows at once; the record's id, which the result
    carries, exists only after that write.
    """

    outcome: Outcome
    inbound: InboundMail
    reference: str | None = None
    reason: str = ""

    def result(self) -> Result:
        return Result(self.outcome, self.inbound.id, self.reference, self.reason)


# Asked for every message: built once, and run below the ORM.
_BY_KEY = select(InboundMail.id).where(InboundMail.dedupe_key == bindparam("key"))


# The length of InboundMail.dedupe_key.
_KEY_CHARS = 300
# Enough of a file to hold its header block.
_HEADER_BYTES = 256 * 1024


def dedupe_key(message_id: str | None, archived: ArchivedMail) -> str:
    """The same complaint in both inboxes, or fetched twice, has one key."""
    if not message_id:
        return f"sha:{archived.sha256}"
    key = f"mid:{message_id}"
    if len(key) > _KEY_CHARS:
        key = f"mid#{hashlib.sha256(message_id.encode()).hexdigest()}"
    return key


def same_message(earlier: InboundMail, raw: bytes, data_dir: Path) -> bool:
    """Whether ``raw``, which has the Message-ID of ``earlier``, is that message.

    The same message in both inboxes differs in its Received and Delivered-To
    headers but keeps From, Date and Subject; a sender that stamps one
    Message-ID on different mail (a badly made web form, a copied draft) does not.
    """
    # A data folder moved or restored elsewhere has the file under its digest.
    paths = [Path(earlier.raw_path), archive_path(data_dir, earlier.sha256)]
    for path in dict.fromkeys(paths):
        try:
            with open(path, "rb") as archived:
                before = archived.read(_HEADER_BYTES)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("message %s: cannot compare: %s", earlier.sha256[:12], exc)
            break
        return _fingerprint(before) == _fingerprint(raw[:_HEADER_BYTES])
    # Without the earlier file, taking it for the same message loses nothing
    # that is not already archived under its own digest.
    log.warning(
        "message %s: earlier copy unreadable; taken as the same", earlier.sha256[:12]
    )
    return True


def reused_id_key(key: str, raw: bytes) -> str:
    """The key of a message whose Message-ID a different, earlier message has."""
    return f"{key[: _KEY_CHARS - 17]}#{_fingerprint(raw[:_HEADER_BYTES])}"


def _fingerprint(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
    values = [
        " ".join(str(headers.get(name, "")).split()) for name in _FINGERPRINT_HEADERS
    ]
    text = "\n".join(values).encode("utf-8", "surrogateescape")
    return hashlib.sha256(text).hexdigest()[:16]


_FINGERPRINT_HEADERS = ("From", "Date", "Subject")


def earlier_record(session: Session, key: str) -> InboundMail | None:
    """The record of a message received before under this key.

    Records of this batch that are not written yet count too: the same message
    twice in one batch is a duplicate like any other.
    """
    pending = pending_rows(session).inbound.get(key)
    if pending is not None:
        return pending
    found = session.connection().execute(_BY_KEY, {"key": key}).scalar()
    if found is None:
        return None
    with session.no_autoflush:
        return session.get(InboundMail, found)


def record(
    session: Session,
    key: str,
    archived: ArchivedMail,
    origin: Origin,
    now: datetime,
    *,
    claim: bool = True,
) -> InboundMail:
    """A new pending record for a received message.

    With ``claim`` the record is written at once (see below); a batch leaves it
    to the batch's one write.
    """
    pending = InboundStatus.PENDING
    inbound = _new_record(session, key, archived, origin, now=now, status=pending)
    if claim:
        # Claims the message's key at once: a second worker with the same
        # Message-ID waits here and reruns as a duplicate, before it has opened
        # (and logged) a ticket that would then be rolled back.
        session.flush()
    return inbound


def _new_record(
    session: Session,
    key: str,
    archived: ArchivedMail,
    origin: Origin,
    *,
    now: datetime,
    status: InboundStatus,
) -> InboundMail:
    inbound = InboundMail(
        dedupe_key=key,
        sha256=archived.sha256,
        raw_path=str(archived.path),
        size=archived.size,
        source=origin.source,
        received_at=now,
        status=status,
    )
    session.add(inbound)
    note_inbound(session, inbound)
    return inbound


def duplicate(
    session: Session, earlier: InboundMail, archived: ArchivedMail, origin: Origin
) -> Disposition:
    """The disposition of a message already received, naming its ticket."""
    with session.no_autoflush:
        ticket = earlier.ticket
    reference = ticket.reference if ticket is not None else None
    on_commit(
        session,
        log.info,
        "message %s: seen again via %s, skipped",
        archived.sha256[:12],
        origin.account,
    )
    return Disposition(Outcome.DUPLICATE, earlier, reference, "already received")


# The key of a quarantined record whose message is being run again.
_RETRYING = "retrying:"


def quarantine(
    sessions: SessionFactory,
    archived: ArchivedMail,
    origin: Origin,
    reason: str,
    now: datetime,
) -> Result:
    """Set a message aside with its reason, in a transaction of its own."""
    with sessions.begin() as session:
        set_aside = quarantine_within(session, archived, origin, reason, now)
        session.flush()
        return set_aside.result()


def quarantine_within(
    session: Session,
    archived: ArchivedMail,
    origin: Origin,
    reason: str,
    now: datetime,
) -> Disposition:
    """Set a message aside with its reason, in the caller's transaction."""
    key = f"sha:{archived.sha256}"
    inbound = earlier_record(session, key)
    if inbound is not None:
        # The same bytes were set aside before (an import run again): one
        # record, its reason as this version reads it, and no second warning.
        inbound.reason = reason[:2000]
        return duplicate(session, inbound, archived, origin)

    quarantined = InboundStatus.QUARANTINED
    inbound = _new_record(session, key, archived, origin, now=now, status=quarantined)
    inbound.reason = reason[:2000]
    on_commit(
        session,
        log.warning,
        "message %s: quarantined: %s",
        archived.sha256[:12],
        reason[:200],
    )
    return Disposition(Outcome.QUARANTINED, inbound, None, reason)


def take_quarantined(
    sessions: SessionFactory, inbound_id: int, data_dir: Path
) -> tuple[bytes, Origin]:
    """A quarantined message's raw bytes and origin, to run again; staff mail
    set aside as forged too (its sender check may have failed on a setting).

    The record stays listed until ``drop_retried`` removes it after the run,
    so a crash in between loses nothing; its key is set apart so the run can
    record the message anew.
    """
    with sessions.begin() as session:
        inbound = session.get(InboundMail, inbound_id)
        if inbound is None or inbound.status not in SET_ASIDE:
            raise MessageError(f"no quarantined or forged message {inbound_id}")
        origin = Origin(inbound.source.split(":", 1)[0], "", inbound.source)
        # Read first: a record whose raw file is missing must stay listed.
        raw = _read_raw(inbound, data_dir)
        if not inbound.dedupe_key.startswith(_RETRYING):
            inbound.dedupe_key = f"{_RETRYING}{inbound.id}:{inbound.dedupe_key}"[:300]
    return raw, origin


def drop_retried(sessions: SessionFactory, inbound_id: int) -> None:
    """Remove a quarantined record whose message has been run again."""
    with sessions.begin() as session:
        session.execute(delete(InboundMail).where(InboundMail.id == inbound_id))


def _read_raw(inbound: InboundMail, data_dir: Path) -> bytes:
    # A data folder moved or restored elsewhere keeps its layout: the file is
    # found under the digest when the recorded path is gone.
    paths = [Path(inbound.raw_path), archive_path(data_dir, inbound.sha256)]
    for path in dict.fromkeys(paths):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise MessageError(
                f"quarantined message {inbound.id}: cannot read {path}: {exc.strerror}"
            ) from exc
        if hashlib.sha256(raw).hexdigest() != inbound.sha256:
            raise MessageError(
                f"quarantined message {inbound.id}: {path} does not hold the bytes "
                "received (its SHA-256 differs); not run again"
            )
        return raw
    raise MessageError(
        f"quarantined message {inbound.id}: cannot read {inbound.raw_path}: "
        "No such file or directory"
    )


def keep(
    session: Session,
    ticket: Ticket,
    inbound: InboundMail,
    received: Received,
    *,
    kind: str,
) -> None:
    """Keep a received message as a message of its ticket."""
    mail = received.mail
    message = MessageRecord(
        direction=Direction.IN,
        kind=kind,
        message_id=received.message_id,
        sender=mail.sender_address,
        recipients=(*mail.to, *mail.cc),
        subject=mail.subject,
        text=received.text,
        at=received.at,
        attachments=tuple(_attachment_record(a) for a in received.attachments),
    )
    add_message(session, ticket, message).inbound = inbound


def _attachment_record(stored: StoredAttachment) -> dict[str, object]:
    return {
        "filename": stored.filename,
        "content_type": stored.content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "quarantined": stored.quarantined,
        "reason": stored.reason,
    }
