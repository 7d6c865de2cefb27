"""Intake: the order of steps for every received message, and its error boundary.

archive -> parse -> de-duplicate -> screen -> thread -> follow-up or new ticket
(route, open, acknowledge, notify the unit), all in one transaction per message.
The raw bytes are archived before anything else; a message that fails any step
is quarantined with its reason and can be re-run with ``quarantine retry``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.archive import ArchivedMail, archive, sync_archive
from mailbot.authenticity import SenderCheck, check_sender, record_forgery
from mailbot.autoreply import acknowledge_within_limit
from mailbot.bounces import handle_bounce
from mailbot.clock import Clock
from mailbot.config import Settings
from mailbot.conversation import Continuation, continuation
from mailbot.db import SessionFactory
from mailbot.deskletters import DeskLetters
from mailbot.errors import MessageError
from mailbot.identity import carries_identity
from mailbot.inbound import (
    Origin,
    Outcome,
    Result,
    dedupe_key,
    duplicate,
    earlier_record,
    keep,
    quarantine,
    record,
    take_quarantined,
)
from mailbot.letters import Correspondence, Received
from mailbot.models import InboundMail, InboundStatus, Ticket, TicketStatus
from mailbot.parsing import ParsedMail, parse_message
from mailbot.replies import new_text
from mailbot.routing import Router
from mailbot.screening import Verdict, complainant_address, screen
from mailbot.signing import Signer
from mailbot.sizelimits import store_within_limits
from mailbot.staffdesk import StaffDesk
from mailbot.threads import Thread, base_subject, find_thread
from mailbot.tickets import (
    NewTicket,
    change_status,
    open_ticket,
    record_event,
)

log = logging.getLogger(__name__)

ARCHIVE_SYNC_EVERY = 200


class Intake:
    """Turns received messages into tickets and follow-ups."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        *,
        clock: Clock,
        signer: Signer,
        router: Router,
        correspondence: Correspondence,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.signer = signer
        self.router = router
        self.letters = correspondence
        self.desk_letters = DeskLetters(correspondence)
        self.desk = StaffDesk(settings, self.desk_letters)
        self.staff = frozenset(s.email.lower() for s in settings.staff) | frozenset(
            e.lower() for u in settings.units for e in u.emails
        )
        self.own_addresses = _own_addresses(settings)
        self.unsynced = 0

    def make_durable(self) -> None:
        """Flush the raw archive to disk; callers do so before a batch is final."""
        if self.unsynced:
            sync_archive()
            self.unsynced = 0

    def receive(self, raw: bytes, origin: Origin) -> Result:
        """Process one message; never raises for a bad message."""
        # One fsync per message cost more than parsing it; the archive is made
        # durable per batch instead (see sync_archive for why that is safe).
        archived = archive(self.settings.storage.data_dir, raw, durable=False)
        self.unsynced += 1
        if self.unsynced >= ARCHIVE_SYNC_EVERY:
            self.make_durable()
        try:
            return self._in_transaction(raw, archived, origin)
        except MessageError as exc:
            return self._quarantine(archived, origin, str(exc))
        except Exception as exc:  # the per-message boundary: set aside, go on
            log.exception(
                "message %s from %s failed", archived.sha256[:12], origin.source
            )
            return self._quarantine(archived, origin, f"{type(exc).__name__}: {exc}")

    def _in_transaction(
        self, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Result:
        try:
            with self.sessions.begin() as session:
                return self._process(session, raw, archived, origin)
        except IntegrityError:
            # Another worker recorded the same message first: run it once more,
            # and the de-duplication step now sees that worker's record.
            with self.sessions.begin() as session:
                return self._process(session, raw, archived, origin)

    def _quarantine(
        self, archived: ArchivedMail, origin: Origin, reason: str
    ) -> Result:
        now = self.clock.now()
        return quarantine(self.sessions, archived, origin, reason, now)

    def retry(self, inbound_id: int) -> Result:
        """Run a quarantined message through intake again."""
        raw, origin = take_quarantined(self.sessions, inbound_id)
        return self.receive(raw, origin)

    def _process(
        self, session: Session, raw: bytes, archived: ArchivedMail, origin: Origin
    ) -> Result:
        mail = parse_message(raw, now=self.clock.now())
        key = dedupe_key(mail.message_id, archived)
        earlier = earlier_record(session, key)
        if earlier is not None:
            return duplicate(session, earlier, origin)

        inbound = record(session, key, archived, origin, self.clock.now())
        verdict = screen(mail, self.own_addresses, is_ours=self._is_ours)
        if verdict.verdict == Verdict.BOUNCE:
            return self._bounce(session, inbound, mail, raw, verdict.reason)
        if verdict.verdict != Verdict.PERSON:
            return self._automatic(session, inbound, mail, verdict.reason)
        if not mail.sender_address:
            raise MessageError("no usable sender address in From")
        return self._from_person(session, inbound, mail, archived, origin)

    def _from_person(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        archived: ArchivedMail,
        origin: Origin,
    ) -> Result:
        thread = self._find_thread(session, mail, self.staff)
        received = self._received(mail, archived)
        if mail.sender_address in self.staff:
            check = self._check_staff(mail, thread)
            if not check.authentic:
                return self._forged(session, inbound, thread, check)
        if mail.sender_address in self.staff and thread is not None:
            return self._staff_mail(session, inbound, thread, received)
        if thread is not None:
            return self._follow_up(session, inbound, thread, received, origin)
        return self._new_ticket(session, inbound, origin, received)

    def _find_thread(
        self, session: Session, mail: ParsedMail, staff: frozenset[str] = frozenset()
    ) -> Thread | None:
        # Only rows of earlier messages can be the thread: this message's own
        # record is written later, with everything else it makes.
        with session.no_autoflush:
            return find_thread(
                session, mail, self.signer, self.settings.office.reference_prefix, staff
            )

    def _keep_received(
        self,
        session: Session,
        ticket: Ticket,
        inbound: InboundMail,
        received: Received,
        kind: str,
    ) -> None:
        keep(session, ticket, inbound, received, kind=kind, now=self.clock.now())

    def _is_ours(self, message_id: str) -> bool:
        return self.signer.read_id(message_id) is not None

    def _received(self, mail: ParsedMail, archived: ArchivedMail) -> Received:
        stored = store_within_limits(
            mail.attachments,
            archived.size,
            self.settings.storage.data_dir,
            self.settings.intake,
        )
        message_id = mail.message_id or f"{archived.sha256}@mailbot.invalid"
        return Received(mail, message_id, tuple(stored), mail.text)

    def _new_ticket(
        self, session: Session, inbound: InboundMail, origin: Origin, received: Received
    ) -> Result:
        mail = received.mail
        now = self.clock.now()
        office = self.settings.office
        decision = self.router.route(mail.subject, received.text)
        new = NewTicket(
            complainant_email=complainant_address(mail),
            complainant_name=mail.sender_name,
            subject=base_subject(mail.subject, self.settings.office.reference_prefix)
            or "(tanpa subjek)",
            account=origin.account,
            inbox_address=origin.inbox_address or self.settings.office.email,
            unit_code=decision.unit,
            matched_keywords=decision.matched,
            identity_provided=carries_identity(
                received.text, [a.filename for a in received.attachments]
            ),
            # Imports count as received now: a backlog must not be acknowledged
            # with a deadline that passed years ago.
            received_at=origin.received_at or now,
        )
        ticket = open_ticket(
            session,
            new,
            prefix=office.reference_prefix,
            response_hours=office.response_hours,
            timezone=office.timezone,
            sla=self.settings.sla,
            write_now=False,
        )
        self._keep_received(session, ticket, inbound, received, "complaint")
        acknowledge_within_limit(
            session,
            self.letters,
            self.signer,
            ticket,
            received,
            limits=self.settings.intake,
            now=now,
        )
        self.letters.notify_unit(session, ticket, received, now)
        inbound.status, inbound.ticket = InboundStatus.TICKET, ticket
        return _outcome(session, Outcome.TICKET, inbound, ticket.reference)

    def _follow_up(
        self,
        session: Session,
        inbound: InboundMail,
        thread: Thread,
        received: Received,
        origin: Origin,
    ) -> Result:
        ticket = thread.ticket
        now = self.clock.now()
        received = replace(received, text=new_text(received.text))
        step = continuation(ticket, now, self.settings.workflow.reopen_days)
        if step == Continuation.NEW_TICKET:
            return self._successor(session, inbound, origin, received, ticket)

        self._keep_received(session, ticket, inbound, received, "follow_up")
        record_event(session, ticket, "follow_up", f"via {thread.link}", at=now)
        if step == Continuation.REOPEN:
            change_status(session, ticket, TicketStatus.IN_PROGRESS, at=now)
            record_event(session, ticket, "reopened", "complainant replied", at=now)
            self.desk_letters.reopened(session, ticket, received, now)
        else:
            self.letters.notify_follow_up(session, ticket, received, now)
        inbound.status, inbound.ticket = InboundStatus.FOLLOW_UP, ticket
        log.info("ticket %s: follow-up received (%s)", ticket.reference, thread.link)
        return _outcome(session, Outcome.FOLLOW_UP, inbound, ticket.reference)

    def _staff_mail(
        self, session: Session, inbound: InboundMail, thread: Thread, received: Received
    ) -> Result:
        ticket = thread.ticket
        received = replace(received, text=new_text(received.text))
        self._keep_received(session, ticket, inbound, received, "staff_reply")
        staff = self.settings.staff_member(received.mail.sender_address)
        if staff is None:
            raise MessageError("staff address without a staff entry")

        done = self.desk.handle(session, ticket, staff, received, self.clock.now())
        inbound.status, inbound.ticket = InboundStatus.FOLLOW_UP, ticket
        log.info(
            "ticket %s: staff reply: %s",
            ticket.reference,
            ", ".join(done.actions) or "refused",
        )
        return _outcome(session, Outcome.STAFF, inbound, ticket.reference)

    def _check_staff(self, mail: ParsedMail, thread: Thread | None) -> SenderCheck:
        signed = thread is not None and thread.addressed_to_sender
        trusted = self.settings.security.trusted_authserv_id
        return check_sender(mail, trusted, signed_reply=signed)

    def _forged(
        self,
        session: Session,
        inbound: InboundMail,
        thread: Thread | None,
        check: SenderCheck,
    ) -> Result:
        ticket = thread.ticket if thread is not None else None
        session.flush()  # the warning about a forgery names the record's id
        record_forgery(session, inbound, ticket, check, self.clock.now())
        reference = ticket.reference if ticket is not None else None
        return _outcome(session, Outcome.FORGED, inbound, reference, check.reason)

    def _successor(
        self,
        session: Session,
        inbound: InboundMail,
        origin: Origin,
        received: Received,
        old: Ticket,
    ) -> Result:
        result = self._new_ticket(session, inbound, origin, received)
        new = session.scalar(select(Ticket).where(Ticket.reference == result.reference))
        now = self.clock.now()
        if new is not None:
            record_event(session, new, "linked", f"continues {old.reference}", at=now)
            record_event(
                session, old, "linked", f"continued in {new.reference}", at=now
            )
            log.info("ticket %s: continues %s", new.reference, old.reference)
        return result

    def _bounce(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        raw: bytes,
        reason: str,
    ) -> Result:
        ticket = handle_bounce(
            session,
            mail,
            raw,
            signer=self.signer,
            prefix=self.settings.office.reference_prefix,
            now=self.clock.now(),
        )
        return self._automatic(
            session, inbound, mail, reason, ticket=ticket, kind="bounce"
        )

    def _automatic(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        reason: str,
        *,
        ticket: Ticket | None = None,
        kind: str = "automatic",
    ) -> Result:
        if ticket is None:
            thread = self._find_thread(session, mail)
            ticket = thread.ticket if thread is not None else None
        inbound.status, inbound.reason = InboundStatus.AUTOMATIC, reason
        if ticket is None:
            result = _outcome(session, Outcome.AUTOMATIC, inbound, None, reason)
            log.warning("inbound %d: automatic mail skipped: %s", inbound.id, reason)
            return result

        received = Received(mail, mail.message_id or "", (), mail.text)
        self._keep_received(session, ticket, inbound, received, kind)
        inbound.ticket = ticket
        log.warning(
            "ticket %s: automatic mail attached, not answered: %s",
            ticket.reference,
            reason,
        )
        return _outcome(session, Outcome.AUTOMATIC, inbound, ticket.reference, reason)


def _outcome(
    session: Session,
    outcome: Outcome,
    inbound: InboundMail,
    reference: str | None = None,
    reason: str = "",
) -> Result:
    # Rows are written in one flush per message, here, rather than one per
    # row: the record's id, which the result carries, exists from this point.
    session.flush()
    return Result(outcome, inbound.id, reference, reason)


def _own_addresses(settings: Settings) -> frozenset[str]:
    addresses = {settings.office.email.lower()}
    addresses.update(a.inbox_address.lower() for a in settings.accounts)
    if settings.smtp is not None:
        addresses.add(settings.smtp.from_address.lower())
    return frozenset(addresses)
