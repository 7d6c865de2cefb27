"""Intake: the order of steps for every received message, and its error boundary.

archive -> parse -> de-duplicate -> screen -> file (``filing``: the thread, then
a follow-up, a staff reply or a new ticket). On SQLite a batch of messages
shares one transaction; on PostgreSQL each message has its own. The raw bytes
are archived before anything else; a message that fails any step is
quarantined with its reason and can be re-run with ``quarantine retry``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mailbot.archive import ArchivedMail, archive, sync_archive
from mailbot.config import Settings
from mailbot.db import SessionFactory, single_writer
from mailbot.errors import MessageError
from mailbot.filing import Filing
from mailbot.inbound import (
    Disposition,
    Origin,
    Result,
    dedupe_key,
    drop_retried,
    duplicate,
    earlier_record,
    quarantine,
    quarantine_within,
    record,
    reused_id_key,
    same_message,
    take_quarantined,
)
from mailbot.models import InboundMail
from mailbot.parsing import ParsedMail, parse_message
from mailbot.screening import Screening, Verdict, complainant_address, screen

log = logging.getLogger(__name__)
T = TypeVar("T")

ARCHIVE_SYNC_EVERY = 200
MAX_ADDRESS_CHARS = 254
# A transaction takes at most this many messages, fewer when they are large:
# a batch's rows, its letters included, stay in memory until it commits.
TRANSACTION_MESSAGES = 100
TRANSACTION_BYTES = 32 * 1024 * 1024


def transactions(
    items: Iterable[T],
    size: Callable[[T], int],
    *,
    messages: int = TRANSACTION_MESSAGES,
) -> Iterator[list[T]]:
    """The items in batches as one transaction takes them: by count and bytes."""
    batch: list[T] = []
    held = 0
    for item in items:
        batch.append(item)
        held += size(item)
        if len(batch) >= messages or held >= TRANSACTION_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class Intake:
    """Turns received messages into tickets and follow-ups."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        filing: Filing,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.filing = filing
        self.clock = filing.clock
        self.signer = filing.signer
        self.own_addresses = settings.own_addresses
        self.unsynced = 0
        # SQLite lets one writer in at a time anyway, so a batch per transaction
        # costs no concurrency there. On PostgreSQL several workers share the
        # reference counter, whose row a batch would keep locked until it
        # commits: there each message keeps its own transaction.
        self.batches = single_writer(sessions)

    def make_durable(self) -> None:
        """Flush the raw archive to disk; callers do so before a batch is final."""
        if self.unsynced:
            sync_archive()
            self.unsynced = 0

    def receive(self, raw: bytes, origin: Origin) -> Result:
        """Process one message in a transaction of its own; never raises."""
        return self._receive_alone(raw, self._archive(raw), origin)

    def receive_batch(self, messages: Sequence[tuple[bytes, Origin]]) -> list[Result]:
        """Process messages a batch per transaction; never raises for a bad message.

        A commit per message cost more than parsing it. A message that is merely
        bad is quarantined inside its batch; any other failure rolls the batch
        back, and its messages are taken again one transaction each.
        """
        # Every message is archived before anything else is done with it.
        archived = [self._archive(raw) for raw, _ in messages]
        if not self.batches:
            return self._one_by_one(messages, archived)

        results: list[Result] = []
        pairs = zip(messages, archived, strict=True)
        for batch in transactions(pairs, lambda pair: len(pair[0][0])):
            taken, kept = [m for m, _ in batch], [a for _, a in batch]
            results.extend(self._in_one_transaction(taken, kept))
        return results

    def _in_one_transaction(
        self, messages: Sequence[tuple[bytes, Origin]], archived: list[ArchivedMail]
    ) -> list[Result]:
        if len(messages) == 1:
            return self._one_by_one(messages, archived)

        try:
            with self.sessions.begin() as session:
                ended = [
                    self._settle(session, raw, kept, origin)
                    for (raw, origin), kept in zip(messages, archived, strict=True)
                ]
                session.flush()
                return [disposition.result() for disposition in ended]
        except Exception as exc:
            if storage_trouble(exc):
                raise
            # Nothing of the batch was logged: state changes log on commit.
            log.warning(
                "batch of %d messages rolled back (%s: %s); taking them one at a time",
                len(messages),
                type(exc).__name__,
                str(exc)[:200],
            )
        return self._one_by_one(messages, archived)

    def _one_by_one(
        self, messages: Sequence[tuple[bytes, Origin]], archived: list[ArchivedMail]
    ) -> list[Result]:
        return [
            self._receive_alone(raw, kept, origin)
            for (raw, origin), kept in zip(messages, archived, strict=True)
        ]

    def _archive(self, raw: bytes) -> ArchivedMail:
        # One fsync per message cost more than parsing it; the archive is made
        # durable per batch instead (see sync_archive for why that is safe).
        archived = archive(self.settings.storage.data_dir, raw, durable=False)
        self.unsynced += 1
        if self.unsynced >= ARCHIVE_SYNC_EVERY:
            self.make_durable()
        return archived

    def _receive_alone(
        self, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Result:
        try:
            return self._in_transaction(raw, archived, origin)
        except MessageError as exc:
            return self._quarantine(archived, origin, str(exc))
        except Exception as exc:  # the per-message boundary: set aside, go on
            if storage_trouble(exc):
                # A full disk or a locked database is no fault of the message:
                # the run stops, the message stays unhandled on the server,
                # and it is taken again once the trouble is over.
                raise
            log.exception(
                "message %s from %s failed", archived.sha256[:12], origin.source
            )
            return self._quarantine(archived, origin, failure_reason(exc))

    def _in_transaction(
        self, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Result:
        try:
            with self.sessions.begin() as session:
                return self._write(session, raw, archived, origin)
        except IntegrityError:
            # Another worker recorded the same message first: run it once more,
            # and the de-duplication step now sees that worker's record.
            with self.sessions.begin() as session:
                return self._write(session, raw, archived, origin)

    def _write(
        self, session: Session, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Result:
        found = self._examine(session, raw, archived, origin)
        if not isinstance(found, Disposition):
            found = self._dispatch(session, found, raw, archived, origin, claim=True)
        session.flush()
        return found.result()

    def _settle(
        self, session: Session, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Disposition:
        # Examining adds nothing to the session, so a message found bad there
        # is quarantined within the batch; a failure after that fails the batch.
        try:
            found = self._examine(session, raw, archived, origin)
        except MessageError as exc:
            return quarantine_within(
                session, archived, origin, str(exc), self.clock.now()
            )
        if isinstance(found, Disposition):
            return found
        return self._dispatch(session, found, raw, archived, origin, claim=False)

    def _quarantine(
        self, archived: ArchivedMail, origin: Origin, reason: str
    ) -> Result:
        now = self.clock.now()
        return quarantine(self.sessions, archived, origin, reason, now)

    def retry(self, inbound_id: int) -> Result:
        """Run a quarantined message through intake again; its old record goes
        once the message has a new one."""
        data_dir = self.settings.storage.data_dir
        raw, origin = take_quarantined(self.sessions, inbound_id, data_dir)
        result = self.receive(raw, origin)
        drop_retried(self.sessions, inbound_id)
        return result

    def _examine(
        self, session: Session, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> _Examined | Disposition:
        """Parse, de-duplicate and screen; everything that finds a message bad."""
        mail = parse_message(raw, now=self.clock.now())
        data_dir = self.settings.storage.data_dir
        key, earlier = _earlier(session, mail, raw, archived, data_dir)
        if earlier is not None:
            return duplicate(session, earlier, archived, origin)

        verdict = screen(mail, self.own_addresses, is_ours=self._is_ours)
        if verdict.verdict == Verdict.PERSON:
            _check_answerable(mail)
        return _Examined(mail, key, verdict)

    def _dispatch(
        self,
        session: Session,
        examined: _Examined,
        raw: bytes,
        archived: ArchivedMail,
        origin: Origin,
        *,
        claim: bool,
    ) -> Disposition:
        mail, verdict = examined.mail, examined.verdict
        now = self.clock.now()
        inbound = record(session, examined.key, archived, origin, now, claim=claim)
        if verdict.verdict == Verdict.BOUNCE:
            return self.filing.bounce(session, inbound, mail, raw, verdict.reason)
        if verdict.verdict != Verdict.PERSON:
            return self.filing.automatic(session, inbound, mail, verdict.reason)
        return self.filing.person(session, inbound, mail, archived, origin)

    def _is_ours(self, message_id: str) -> bool:
        return self.signer.read_id(message_id) is not None


def _earlier(
    session: Session,
    mail: ParsedMail,
    raw: bytes,
    archived: ArchivedMail,
    data_dir: Path,
) -> tuple[str, InboundMail | None]:
    """The message's key, and the record of its earlier copy if there is one."""
    key = dedupe_key(mail.message_id, archived)
    earlier = earlier_record(session, key)
    if earlier is None or same_message(earlier, raw, data_dir):
        return key, earlier

    first, key = earlier, reused_id_key(key, raw)
    earlier = earlier_record(session, key)
    if earlier is None:
        log.warning(
            "message %s: has the Message-ID of message %s, but From, Date or "
            "Subject differ: received as a message of its own",
            archived.sha256[:12],
            first.sha256[:12],
        )
    return key, earlier


@dataclass(frozen=True)
class _Examined:
    """A message parsed, new and screened: what the writing steps start from."""

    mail: ParsedMail
    key: str
    verdict: Screening


def _check_answerable(mail: ParsedMail) -> None:
    if not mail.sender_address:
        raise MessageError("no usable sender address in From")
    # Letters go out without SMTPUTF8, which not every server offers: an
    # address with non-ASCII characters cannot be answered, so staff decide.
    address = complainant_address(mail)
    if not address.isascii():
        raise MessageError("sender address has non-ASCII characters; cannot answer it")
    # RFC 5321 4.5.3.1.3: no server takes a longer path, so no answer could go.
    if len(address) > MAX_ADDRESS_CHARS:
        raise MessageError(
            f"sender address longer than {MAX_ADDRESS_CHARS} characters; "
            "cannot answer it"
        )


def failure_reason(exc: Exception) -> str:
    """One line that says why a message failed, for the quarantine list."""
    # A database error's text is its whole statement: name the driver's error.
    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
    lines = str(cause).strip().splitlines()
    name = type(cause).__name__
    return f"{name}: {lines[0]}" if lines else name


# Errors of the machine, not of a message: a full, read-only or failing disk.
_STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
)


def storage_trouble(exc: BaseException) -> bool:
    """Whether an error is the storage's (disk or database), not the message's."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # The server ended the session (PostgreSQL's idle-in-transaction
        # timeout, an administrator): these come as InternalError.
        return True
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS
