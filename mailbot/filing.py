"""Filing: a screened, new message kept as a ticket, a follow-up or a staff reply.

Intake decides that a message is new and what kind of sender wrote it; filing
finds the ticket it continues, if any, and writes what follows in the caller's
transaction: a new ticket (routed, acknowledged, its unit told), a follow-up
(reopening the ticket if needed), a staff reply worked by the desk, automatic
mail attached to its ticket, or a forgery recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.archive import ArchivedMail
from mailbot.authenticity import SenderCheck, check_sender, record_forgery
from mailbot.autoreply import acknowledge_within_limit, confirm_within_limit
from mailbot.bounces import handle_bounce
from mailbot.clock import Clock
from mailbot.commitlog import on_commit
from mailbot.compose import Letter
from mailbot.config import Settings
from mailbot.conversation import Continuation, continuation
from mailbot.deskletters import DeskLetters
from mailbot.errors import MessageError
from mailbot.identity import carries_identity
from mailbot.inbound import Disposition, Origin, Outcome, keep
from mailbot.letters import Correspondence, Received, Related, citizen_subject
from mailbot.models import (
    SET_ASIDE,
    InboundMail,
    InboundStatus,
    OutboxItem,
    Ticket,
    TicketStatus,
)
from mailbot.notices import queue_notice
from mailbot.parsing import ParsedMail
from mailbot.references import Reference, find_references
from mailbot.replies import forwarded, new_text, without_history
from mailbot.routing import Router
from mailbot.screening import complainant_address
from mailbot.signing import Signer
from mailbot.sizelimits import store_within_limits
from mailbot.sla import due_time
from mailbot.staffdesk import StaffDesk
from mailbot.threads import CITED_IDS_LIMIT, Link, Thread, base_subject, find_thread
from mailbot.tickets import NewTicket, change_status, open_ticket, record_event

log = logging.getLogger(__name__)

# How many lines of a forwarded message hold its From, Date, Subject and To.
_FORWARD_HEAD_LINES = 8
# Notices about staff mail that names no ticket or whose sender is not proved,
# per address, kind and day: a responder that answers without citing ours, or
# a flood of forgeries, cannot make more of them.
NOTICES_PER_DAY = 3


class Filing:
    """Writes what a new message makes: tickets, follow-ups, staff replies."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        signer: Signer,
        router: Router,
        correspondence: Correspondence,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.signer = signer
        self.router = router
        self.letters = correspondence
        self.desk_letters = DeskLetters(correspondence)
        self.desk = StaffDesk(settings, self.desk_letters)
        self.staff = frozenset(s.email.lower() for s in settings.staff) | frozenset(
            e.lower() for u in settings.units for e in u.emails
        )

    def person(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        archived: ArchivedMail,
        origin: Origin,
    ) -> Disposition:
        thread = self._find_thread(session, mail, self.staff)
        received = self._received(
            mail, archived, origin.received_at or self.clock.now()
        )
        staff = mail.sender_address in self.staff
        if thread is not None and thread.answers_a_staff_letter and not staff:
            return self._outsider(session, inbound, thread, received)

        related: list[Related] = []
        if thread is not None and not self._may_join(thread, mail):
            related.append(self._stranger_in(session, thread))
            thread = None
        if staff:
            check = self._check_staff(mail, thread, origin)
            if not check.authentic:
                return self._forged(session, inbound, thread, received, check)
        if staff and thread is not None:
            return self._staff_mail(session, inbound, thread, received)
        if staff:
            return self._unfiled_staff_mail(session, inbound, received)
        if thread is not None:
            return self._follow_up(session, inbound, thread, received, origin)
        return self._new_ticket(session, inbound, origin, received, related)

    def _find_thread(
        self, session: Session, mail: ParsedMail, staff: frozenset[str] = frozenset()
    ) -> Thread | None:
        # Only rows of earlier messages can be the thread: this message's own
        # record is written later, with everything else it makes.
        with session.no_autoflush:
            return find_thread(
                session, mail, self.signer, self.settings.office.reference_prefix, staff
            )

    def _may_join(self, thread: Thread, mail: ParsedMail) -> bool:
        # A letter of ours forwarded to a third person, or a reply-all by
        # someone the complainant copied: as with a reference typed into a
        # subject (checked in threads), only the complainant and staff join.
        if thread.link in (Link.SUBJECT, Link.MISTYPED_SUBJECT):
            return True
        if thread.link == Link.SIGNED_ID and thread.addressed_to_sender:
            return True
        writers = {mail.sender_address, complainant_address(mail)}
        return thread.ticket.complainant_email in writers or bool(writers & self.staff)

    def _stranger_in(self, session: Session, thread: Thread) -> Related:
        reference = thread.ticket.reference
        if thread.link == Link.SIGNED_ID:
            what, related = "a letter of it came back", Related.answered_elsewhere
        else:
            what, related = "a reply in its conversation came", Related.in_conversation
        on_commit(
            session,
            log.info,
            "ticket %s: %s from someone else; new ticket",
            reference,
            what,
        )
        return related(reference)

    def _received(
        self, mail: ParsedMail, archived: ArchivedMail, at: datetime
    ) -> Received:
        stored = store_within_limits(
            mail.attachments,
            archived.size,
            self.settings.storage.data_dir,
            self.settings.intake,
        )
        message_id = mail.message_id or f"{archived.sha256}@mailbot.invalid"
        return Received(mail, message_id, tuple(stored), mail.text, at)

    def _new_ticket(
        self,
        session: Session,
        inbound: InboundMail,
        origin: Origin,
        received: Received,
        related: Sequence[Related] = (),
        *,
        identity_on: Ticket | None = None,
    ) -> Disposition:
        """A new ticket; ``identity_on`` is an earlier ticket of the same
        complainant that holds their identity already."""
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
            identity_provided=identity_on is not None or _identity_in(received),
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
        keep(session, ticket, inbound, received, kind="complaint")
        if identity_on is not None:
            detail = f"identity given on {identity_on.reference}"
            record_event(session, ticket, "identity", detail, at=now)
        acknowledge_within_limit(
            session,
            self.letters,
            self.signer,
            ticket,
            received,
            limits=self.settings.intake,
            now=now,
        )
        related = [*related, *self._mentioned(session, received, related)]
        for link in related:
            record_event(session, ticket, "linked", link.detail, at=now)
        self.letters.notify_unit(session, ticket, received, now, related)
        inbound.status, inbound.ticket = InboundStatus.TICKET, ticket
        return _outcome(Outcome.TICKET, inbound, ticket.reference)

    def _unfiled_staff_mail(
        self, session: Session, inbound: InboundMail, received: Received
    ) -> Disposition:
        """Staff mail that names no ticket: never a complaint of theirs.

        The Camat answering the digest, or a command sent as a new mail without
        the reference, is set aside with its reason; the sender is told how to
        reach a ticket, once: an answer to that letter gets no second one, and
        no address gets more than NOTICES_PER_DAY of them a day.
        """
        reason = "staff mail that names no ticket"
        inbound.status, inbound.reason = InboundStatus.QUARANTINED, reason
        if not self._answers_our_notice(session, received.mail):
            office = self.settings.office
            example = Reference(office.reference_prefix, self.clock.now().year, 123)
            self._tell_staff(
                session,
                inbound,
                received,
                "unfiled_staff_mail",
                "Pesan sistem: email tidak terkait pengaduan",
                example=str(example),
            )
        session.flush()  # the log line names the record's id
        on_commit(session, log.info, "inbound %d: %s; set aside", inbound.id, reason)
        return _outcome(Outcome.QUARANTINED, inbound, None, reason)

    def _answers_our_notice(self, session: Session, mail: ParsedMail) -> bool:
        cited = [*mail.in_reply_to, *mail.references]
        found = session.scalar(
            select(OutboxItem.id).where(
                OutboxItem.kind == "unfiled_staff_mail",
                OutboxItem.message_id.in_(cited[:CITED_IDS_LIMIT]),
            )
        )
        return found is not None

    def _set_aside_before(self, session: Session, inbound: InboundMail) -> bool:
        # `quarantine retry` keeps the old record until the new run has made
        # its own: the same bytes set aside before were told of already.
        earlier = session.scalar(
            select(InboundMail.id)
            .where(InboundMail.sha256 == inbound.sha256)
            .where(InboundMail.id != inbound.id)
            .where(InboundMail.status.in_(SET_ASIDE))
            .limit(1)
        )
        return earlier is not None

    def _notices_today(self, session: Session, kind: str, address: str) -> int:
        since = self.clock.now() - timedelta(hours=24)
        told = session.scalars(
            select(OutboxItem.recipients).where(
                OutboxItem.kind == kind, OutboxItem.created_at >= since
            )
        )
        return sum(address in recipients for recipients in told)

    def _tell_staff(
        self,
        session: Session,
        inbound: InboundMail,
        received: Received,
        kind: str,
        subject: str,
        **fields: str,
    ) -> None:
        """A system letter to a staff member about their mail, in its thread:
        one per message, retries included, and at most NOTICES_PER_DAY of a
        kind to one address.

        The subject is repeated as letters to citizens repeat theirs: whoever
        wrote the mail may not be the staff member whose address it bears.
        """
        address = received.mail.sender_address
        if self._notices_today(session, kind, address) >= NOTICES_PER_DAY:
            return
        if self._set_aside_before(session, inbound):
            return
        context = {
            "office": {"name": self.settings.office.name},
            "subject": citizen_subject(received.mail.subject) or "(tanpa subjek)",
            **fields,
        }
        letter = Letter(
            kind=kind,
            to=(address,),
            subject=subject,
            body=self.letters.renderer.render(f"staff/{kind}", context),
            in_reply_to=received.message_id,
            references=(*received.mail.references, received.message_id),
            auto_submitted="auto-replied",
        )
        queue_notice(session, letter, sender=self.letters.sender, now=self.clock.now())

    def _outsider(
        self, session: Session, inbound: InboundMail, thread: Thread, received: Received
    ) -> Disposition:
        """A reply to a letter for staff from someone not on the staff list.

        Someone a notice was passed on to (a village head, a colleague not in
        [[staff]]): what they wrote reaches the unit, but it is not a complaint
        and its tags are not commands.
        """
        ticket, now = thread.ticket, self.clock.now()
        received = replace(received, text=new_text(received.text))
        keep(session, ticket, inbound, received, kind="outsider_reply")
        record_event(
            session, ticket, "outsider_reply", "reply to a staff letter", at=now
        )
        lines = [
            "Balasan atas email staf untuk tiket ini datang dari "
            f"{received.mail.sender_address}, yang tidak terdaftar sebagai staf. "
            "Tagar di dalamnya tidak dijalankan sebagai perintah.",
            "Isi pesan:",
            received.text or "(tanpa teks baru)",
        ]
        self.desk_letters.to_unit(session, ticket, lines, now)
        inbound.status, inbound.ticket = InboundStatus.FOLLOW_UP, ticket
        on_commit(
            session,
            log.info,
            "ticket %s: reply to a staff letter from outside the staff",
            ticket.reference,
        )
        return _outcome(Outcome.FOLLOW_UP, inbound, ticket.reference)

    def _mentioned(
        self, session: Session, received: Received, known: Sequence[Related]
    ) -> list[Related]:
        """Other tickets the complaint names by their reference."""
        prefix = self.settings.office.reference_prefix
        text = f"{received.mail.subject}\n{received.text}"
        named = {str(r) for r in find_references(text, prefix)}
        named -= {link.reference for link in known}
        if not named:
            return []
        found = session.scalars(
            select(Ticket.reference).where(Ticket.reference.in_(named))
        )
        return [Related.mentioned(reference) for reference in sorted(found)]

    def _follow_up(
        self,
        session: Session,
        inbound: InboundMail,
        thread: Thread,
        received: Received,
        origin: Origin,
    ) -> Disposition:
        ticket = thread.ticket
        now = self.clock.now()
        text = _follow_up_text(received.mail, self.settings.own_addresses)
        received = replace(received, text=text)
        reopen_days = self.settings.workflow.reopen_days
        step = continuation(ticket, now, reopen_days, received.text)
        if step == Continuation.NEW_TICKET:
            return self._successor(session, inbound, origin, received, ticket)

        keep(session, ticket, inbound, received, kind="follow_up")
        record_event(session, ticket, "follow_up", f"via {thread.link}", at=now)
        if step == Continuation.REOPEN:
            self._reopen(session, ticket, received, now)
        elif step == Continuation.THANKS:
            record_event(session, ticket, "thanked", "ticket stays closed", at=now)
        else:
            self.letters.notify_follow_up(session, ticket, received, now)
        # Confirmed in a letter of its own only on an open ticket: a reopened
        # one has its letter already, an answered one needs none.
        confirm = step == Continuation.FOLLOW_UP
        self._take_identity(session, ticket, received, now, confirm=confirm)
        inbound.status, inbound.ticket = InboundStatus.FOLLOW_UP, ticket
        on_commit(
            session,
            log.info,
            "ticket %s: follow-up received (%s)",
            ticket.reference,
            thread.link,
        )
        return _outcome(Outcome.FOLLOW_UP, inbound, ticket.reference)

    def _reopen(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> None:
        # A new promise from now: the old due time has passed, and counting
        # from it would escalate the ticket the moment it reopened.
        office = self.settings.office
        hours, sla = office.response_hours, self.settings.sla
        if ticket.first_due_at is None:
            ticket.first_due_at = ticket.due_at
        ticket.due_at = due_time(now, hours, sla, office.timezone)
        ticket.escalation_step = 0
        # The reopening notice is the unit's reminder.
        ticket.reminded_at = now
        change_status(session, ticket, TicketStatus.IN_PROGRESS, at=now)
        record_event(session, ticket, "reopened", "complainant replied", at=now)
        self.desk_letters.reopened(session, ticket, received, now)
        self._confirm(session, self.letters.confirm_reopened, ticket, received, now)

    def _take_identity(
        self,
        session: Session,
        ticket: Ticket,
        received: Received,
        now: datetime,
        *,
        confirm: bool,
    ) -> None:
        # The acknowledgement asks for the KTP; most citizens send it in reply.
        if ticket.identity_provided:
            return
        if not _identity_in(received):
            return

        ticket.identity_provided = True
        record_event(
            session, ticket, "identity", "identity (NIK or KTP) received", at=now
        )
        on_commit(session, log.info, "ticket %s: identity received", ticket.reference)
        if confirm:
            self._confirm(session, self.letters.confirm_identity, ticket, received, now)

    def _confirm(
        self,
        session: Session,
        confirm: Callable[[Session, Ticket, Received, datetime], object],
        ticket: Ticket,
        received: Received,
        now: datetime,
    ) -> None:
        limits = self.settings.intake
        confirm_within_limit(
            session, confirm, self.signer, ticket, received, limits=limits, now=now
        )

    def _staff_mail(
        self, session: Session, inbound: InboundMail, thread: Thread, received: Received
    ) -> Disposition:
        ticket = thread.ticket
        staff = self.settings.staff_member(received.mail.sender_address)
        if staff is None:
            raise MessageError("staff address without a staff entry")

        received = replace(received, text=new_text(received.text))
        keep(session, ticket, inbound, received, kind="staff_reply")

        now = self.clock.now()
        done = self.desk.handle(
            session, ticket, staff, received, now, answers=thread.letter_kind
        )
        inbound.status, inbound.ticket = InboundStatus.FOLLOW_UP, ticket
        on_commit(
            session,
            log.info,
            "ticket %s: staff reply: %s",
            ticket.reference,
            ", ".join(done.actions) or "refused",
        )
        return _outcome(Outcome.STAFF, inbound, ticket.reference)

    def _check_staff(
        self, mail: ParsedMail, thread: Thread | None, origin: Origin
    ) -> SenderCheck:
        signed = thread is not None and thread.addressed_to_sender
        return check_sender(mail, self._trusted_servers(origin), signed_reply=signed)

    def _trusted_servers(self, origin: Origin) -> tuple[str, ...]:
        # Each inbox may sit with another provider, whose server writes the
        # header. An imported file may come from any inbox: any configured
        # server counts, and with one configured a From alone never does.
        office_wide = self.settings.security.trusted_authserv_id
        try:
            account = self.settings.account(origin.account)
        except KeyError:
            named = [a.trusted_authserv_id for a in self.settings.accounts]
            return tuple(dict.fromkeys(s for s in [office_wide, *named] if s))
        chosen = account.trusted_authserv_id or office_wide
        return (chosen,) if chosen else ()

    def _forged(
        self,
        session: Session,
        inbound: InboundMail,
        thread: Thread | None,
        received: Received,
        check: SenderCheck,
    ) -> Disposition:
        ticket = thread.ticket if thread is not None else None
        session.flush()  # the warning about a forgery names the record's id
        record_forgery(session, inbound, ticket, check, self.clock.now())
        # The letter goes to the address the mail claims, never to a forger:
        # a colleague whose own mail was refused learns why, one whose address
        # was used learns that.
        self._tell_staff(
            session,
            inbound,
            received,
            "unverified_staff_mail",
            "Pesan sistem: pengirim email tidak dapat dipastikan",
        )
        reference = ticket.reference if ticket is not None else None
        return _outcome(Outcome.FORGED, inbound, reference, check.reason)

    def _successor(
        self,
        session: Session,
        inbound: InboundMail,
        origin: Origin,
        received: Received,
        old: Ticket,
    ) -> Disposition:
        related = [Related.continued(old.reference)]
        # The same complainant, by a reply to their own ticket: the identity
        # they gave there is not asked for again.
        known = old if old.identity_provided else None
        result = self._new_ticket(
            session, inbound, origin, received, related, identity_on=known
        )
        new = session.scalar(select(Ticket).where(Ticket.reference == result.reference))
        now = self.clock.now()
        if new is not None:
            record_event(
                session, old, "linked", f"continued in {new.reference}", at=now
            )
            on_commit(
                session,
                log.info,
                "ticket %s: continues %s",
                new.reference,
                old.reference,
            )
        return result

    def bounce(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        raw: bytes,
        reason: str,
    ) -> Disposition:
        ticket = handle_bounce(
            session,
            mail,
            raw,
            signer=self.signer,
            prefix=self.settings.office.reference_prefix,
            now=self.clock.now(),
        )
        return self.automatic(
            session, inbound, mail, reason, ticket=ticket, kind="bounce"
        )

    def automatic(
        self,
        session: Session,
        inbound: InboundMail,
        mail: ParsedMail,
        reason: str,
        *,
        ticket: Ticket | None = None,
        kind: str = "automatic",
    ) -> Disposition:
        if ticket is None:
            thread = self._find_thread(session, mail)
            if thread is not None and self._may_join(thread, mail):
                ticket = thread.ticket
        inbound.status, inbound.reason = InboundStatus.AUTOMATIC, reason
        if ticket is None:
            # Out-of-office answers and newsletters are routine, not a fault.
            on_commit(
                session,
                log.info,
                "message %s: automatic mail skipped: %s",
                inbound.sha256[:12],
                reason,
            )
            return _outcome(Outcome.AUTOMATIC, inbound, None, reason)

        received = Received(
            mail, mail.message_id or "", (), mail.text, inbound.received_at
        )
        keep(session, ticket, inbound, received, kind=kind)
        inbound.ticket = ticket
        on_commit(
            session,
            log.info,
            "ticket %s: automatic mail attached, not answered: %s",
            ticket.reference,
            reason,
        )
        return _outcome(Outcome.AUTOMATIC, inbound, ticket.reference, reason)


def _follow_up_text(mail: ParsedMail, ours: frozenset[str]) -> str:
    # Our letters quoted back are cut; a message the citizen forwards (a
    # neighbour's report, an answer from another office) is what they send.
    own = new_text(mail.text)
    passed_on = forwarded(mail.text, mail.subject)
    if not passed_on or _written_by_us(passed_on, ours):
        return own
    return f"{own}\n\n{passed_on}".strip()


def _written_by_us(passed_on: str, ours: frozenset[str]) -> bool:
    # The header lines of the message passed on name its sender.
    head = "\n".join(passed_on.splitlines()[:_FORWARD_HEAD_LINES]).lower()
    return any(address in head for address in ours)


def _identity_in(received: Received) -> bool:
    # The whole body without forwarded or quoted mail: a NIK in the sender's
    # sign-off is theirs, one in a message they pass on is someone else's.
    own = without_history(received.mail.text)
    return carries_identity(own, [a.filename for a in received.attachments])


def _outcome(
    outcome: Outcome,
    inbound: InboundMail,
    reference: str | None = None,
    reason: str = "",
) -> Disposition:
    return Disposition(outcome, inbound, reference, reason)
