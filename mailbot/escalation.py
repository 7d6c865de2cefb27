"""The SLA sweep: reminders to the unit and escalation up the chain.

Run on a schedule. Reads open tickets; for each, in its own transaction, writes
at most one step: a reminder to the unit once ``reminder_share`` of the time is
gone (to the approving post instead, when the unit's draft waits for it), then
after the due time one escalation step per configured delay, to the Kasubag
Umum, the Sekcam and the Camat in turn; a post nobody holds is passed over to
the next one up. Each step is recorded on the ticket (a column and an Event) in
the same transaction that queues its letters, so a rerun of the sweep sends
nothing twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from mailbot.approval import Approval, pending_draft
from mailbot.commitlog import on_commit
from mailbot.compose import Letter
from mailbot.config import Settings
from mailbot.db import SessionFactory
from mailbot.identity import mask
from mailbot.models import Ticket, TicketStatus
from mailbot.outbox import Sender, queue
from mailbot.policy import POST_TITLES, VERIFICATION_CHAIN, Role
from mailbot.references import parse_reference
from mailbot.rendering import Renderer
from mailbot.signing import Signer
from mailbot.sla import due_time, time_left
from mailbot.tickets import record_event

log = logging.getLogger(__name__)

OPEN_STATES = (TicketStatus.RECEIVED, TicketStatus.IN_PROGRESS)
CHAIN: tuple[Role, ...] = VERIFICATION_CHAIN[1:]
# An escalation event's detail, as _escalate writes it: "step 2: sekcam, ...".
_STEP_DETAIL = re.compile(r"^step \d+: (\w+),")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    reminded: int
    escalated: int


class SlaWatch:
    """Reminds units and escalates overdue tickets along the chain."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        signer: Signer,
        renderer: Renderer,
        sender: Sender,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.signer = signer
        self.renderer = renderer
        self.sender = sender
        self.delays = settings.sla.escalation_delays_hours[: len(CHAIN)]
        self.approval = Approval(settings)

    def sweep(self, now: datetime) -> SweepReport:
        """Take every open ticket one step further if its time has come."""
        reminded = escalated = 0
        for ticket_id in self._candidates(now):
            with self.sessions.begin() as session:
                ticket = _locked_ticket(session, ticket_id)
                if ticket is None or ticket.status not in OPEN_STATES:
                    continue
                action = self._advance(session, ticket, now)
            reminded += action == "reminder"
            escalated += action == "escalation"
        log.info("sla sweep: %d reminded, %d escalated", reminded, escalated)
        return SweepReport(reminded, escalated)

    def _candidates(self, now: datetime) -> list[int]:
        # Past due: escalation candidates; before due: reminder candidates. A
        # ticket at the end of the chain, or reminded and not yet due, is skipped.
        escalating = and_(
            Ticket.escalation_step < len(self.delays), Ticket.due_at <= now
        )
        to_remind = and_(
            Ticket.reminded_at.is_(None),
            Ticket.escalation_step == 0,
            Ticket.due_at > now,
        )
        with self.sessions() as session:
            query = (
                select(Ticket.id)
                .where(Ticket.status.in_(OPEN_STATES))
                .where(or_(escalating, to_remind))
                .order_by(Ticket.due_at)
            )
            return list(session.scalars(query))

    def _advance(self, session: Session, ticket: Ticket, now: datetime) -> str | None:
        # Delays and the reminder run on the promise's own clock: in
        # working-hours mode each post gets office time to act.
        sla, zone = self.settings.sla, self.settings.office.timezone
        step = ticket.escalation_step
        escalate_at = None
        if step < len(self.delays):
            escalate_at = due_time(ticket.due_at, self.delays[step], sla, zone)
        if escalate_at is not None and now >= escalate_at:
            self._escalate(session, ticket, step + 1, now)
            return "escalation"

        # Past the due time a reminder is too late: escalation has taken over.
        hours = self.settings.office.response_hours * sla.reminder_share
        remind_at = due_time(ticket.received_at, hours, sla, zone)
        unreminded = ticket.reminded_at is None and step == 0
        if unreminded and remind_at <= now < ticket.due_at:
            self._remind(session, ticket, now)
            return "reminder"
        return None

    def _remind(self, session: Session, ticket: Ticket, now: datetime) -> None:
        # A unit whose draft waits for approval has done its part: the post
        # that holds the draft is the one to remind.
        fields = self._fields(ticket, now)
        awaiting = fields["awaiting"]
        if awaiting is not None:
            whom = f"approver {awaiting}"
            recipients = self.settings.staff_with_role(awaiting)
            title = "Pengingat persetujuan draf"
        else:
            whom = f"unit {ticket.unit_code}"
            recipients = self.settings.unit_recipients(ticket.unit_code)
            title = "Pengingat batas tanggapan"
        fields["escalates_to"] = self._first_escalation_title(awaiting)
        body = self.renderer.render("staff/reminder", fields)
        subject = f"[{ticket.reference}] {title}: {fields['subject']}"
        letter = Letter("sla_reminder", (), subject, body, ticket.inbox_address)
        self._send(session, ticket, letter, recipients, now)

        ticket.reminded_at = now
        detail = f"{whom}: {len(recipients)} recipients"
        record_event(session, ticket, "reminder", detail, at=now)
        on_commit(
            session, log.info, "ticket %s: reminder sent to %s", ticket.reference, whom
        )

    def _escalate(
        self, session: Session, ticket: Ticket, step: int, now: datetime
    ) -> None:
        step, passed = self._first_held(
            self._above(step, self.approval.awaiting(ticket))
        )
        role = CHAIN[step - 1]
        recipients = self.settings.staff_with_role(role)
        fields = self._fields(ticket, now)
        fields.update(
            step=step, role_title=POST_TITLES[role], earlier=_earlier_steps(ticket)
        )
        body = self.renderer.render("staff/escalation", fields)
        subject = f"[{ticket.reference}] Eskalasi ke {POST_TITLES[role]}: lewat batas"
        letter = Letter("sla_escalation", (), subject, body, ticket.inbox_address)
        self._send(session, ticket, letter, recipients, now)

        ticket.escalation_step = step
        detail = f"step {step}: {role}, {len(recipients)} recipients"
        if passed:
            detail += f" (no staff with role {', '.join(passed)})"
        record_event(session, ticket, "escalation", detail, at=now)
        if not recipients:
            on_commit(
                session,
                log.warning,
                "ticket %s: no [[staff]] with role %s",
                ticket.reference,
                role,
            )
        on_commit(
            session,
            log.info,
            "ticket %s: escalated to %s (step %d)",
            ticket.reference,
            role,
            step,
        )

    def _first_escalation_title(self, reminded: Role | None) -> str | None:
        """Who an overdue ticket goes to first; None when nobody, or when it is
        the post being reminded (it would be told it escalates to itself)."""
        if not self.delays:
            return None
        step, _ = self._first_held(self._above(1, reminded))
        role = CHAIN[step - 1]
        if role == reminded or not self.settings.staff_with_role(role):
            return None
        return POST_TITLES[role]

    def _above(self, step: int, awaiting: Role | None) -> int:
        """The step to take while a draft waits for ``awaiting``: the posts up
        to it cannot move the draft (its author is among them), so an overdue
        draft goes to the post above, or to the awaited post at the top."""
        if awaiting not in CHAIN:
            return step
        return max(step, min(CHAIN.index(awaiting) + 2, len(self.delays)))

    def _first_held(self, step: int) -> tuple[int, list[Role]]:
        """The first step from ``step`` up whose role someone holds, and the roles
        passed over: an overdue ticket must reach a person, not wait a step's delay
        for an empty post."""
        ahead = CHAIN[step - 1 : len(self.delays)]
        held = self.settings.first_held(ahead)
        # Nobody up the chain: the last step, to nobody, as a warning says.
        reached = ahead.index(held) if held is not None else len(ahead) - 1
        return step + reached, list(ahead[:reached])

    def _send(
        self,
        session: Session,
        ticket: Ticket,
        letter: Letter,
        recipients: Sequence[str],
        now: datetime,
    ) -> None:
        prefix = self.settings.office.reference_prefix
        reference = parse_reference(ticket.reference, prefix)
        for address in recipients:
            queue(
                session,
                ticket,
                replace(letter, to=(address,)),
                reference=reference,
                signer=self.signer,
                sender=self.sender,
                now=now,
            )

    def _fields(self, ticket: Ticket, now: datetime) -> dict[str, Any]:
        office, sla = self.settings.office, self.settings.sla
        awaiting = self.approval.awaiting(ticket)
        draft = pending_draft(ticket)
        return {
            "office": {"name": office.name},
            "awaiting": awaiting,
            # Shown whole: the post it reaches may approve what it has read.
            "draft": draft.detail if draft is not None else None,
            "awaiting_title": POST_TITLES[awaiting] if awaiting else None,
            "reference": ticket.reference,
            "subject": mask(ticket.subject),
            "complainant_name": ticket.complainant_name,
            "unit_name": self.settings.unit(ticket.unit_code).name,
            "unit_code": ticket.unit_code,
            "status": str(ticket.status),
            "received_at": ticket.received_at,
            "due_at": ticket.due_at,
            "now": now,
            "overdue": now >= ticket.due_at,
            "time_left": time_left(now, ticket.due_at, sla, office.timezone),
            # The same clock counts the lateness: office time past the due time.
            "late": time_left(ticket.due_at, now, sla, office.timezone),
            "working_hours": sla.mode == "working_hours",
        }


def _locked_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """The ticket, read after taking the lock that keeps a second sweep (a
    `sweep` by hand beside `run`) from acting on it at the same time.

    PostgreSQL locks the row. SQLite has no row locks: a write to the row first
    takes its one write lock, so the state read next is the latest and stays
    so until this transaction ends.
    """
    if session.get_bind().dialect.name != "sqlite":
        return session.get(Ticket, ticket_id, with_for_update=True)
    session.execute(update(Ticket).where(Ticket.id == ticket_id).values(id=Ticket.id))
    return session.get(Ticket, ticket_id, populate_existing=True)


def _earlier_steps(ticket: Ticket) -> list[dict[str, Any]]:
    """The posts the ticket already went to, and when: a Camat reads that the
    Kasubag and the Sekcam were told and the ticket is still open."""
    steps = []
    for event in ticket.events:
        found = _STEP_DETAIL.match(event.detail)
        if event.action == "escalation" and found and found[1] in POST_TITLES:
            steps.append({"title": POST_TITLES[found[1]], "at": event.at})
    return steps
