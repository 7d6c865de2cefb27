"""Desk letters: what staff work sends, to complainants and to staff.

The final response and the rejection go to the complainant, threaded under the
original complaint; forwarded tickets, reopened tickets and approval drafts go
to units and approvers; short answers (refusals, status, help) go back to the
staff member who wrote. Renders templates and queues them in the caller's
transaction through ``letters.Correspondence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailbot.compose import Letter
from mailbot.config import StaffConfig
from mailbot.letters import Correspondence, Received, citizen_subject, notice_text
from mailbot.models import Direction, Message, OutboxItem, Ticket


@dataclass
class StaffAnswer:
    """What mailbot tells a staff member about their reply."""

    lines: list[str] = field(default_factory=list)
    status: dict[str, Any] | None = None
    show_help: bool = False

    def __bool__(self) -> bool:
        return bool(self.lines or self.status is not None or self.show_help)


class DeskLetters:
    """Queues the letters of staff work on tickets."""

    def __init__(self, letters: Correspondence) -> None:
        self.letters = letters
        self.renderer = letters.renderer
        self.settings = letters.settings

    def final_response(
        self, session: Session, ticket: Ticket, text: str, now: datetime
    ) -> OutboxItem:
        """The unit's answer to the complainant."""
        fields = self._citizen_fields(ticket)
        fields.update(response=text, answered_at=now)
        return self._to_complainant(
            session,
            ticket,
            "final_response",
            subject=f"[{ticket.reference}] Tanggapan atas pengaduan: "
            f"{citizen_subject(ticket.subject)}",
            fields=fields,
            now=now,
        )

    def rejection(
        self, session: Session, ticket: Ticket, reason: str, now: datetime
    ) -> OutboxItem:
        """Why the office does not handle the complaint, and where to turn."""
        fields = self._citizen_fields(ticket)
        fields.update(reason=reason, rejected_at=now)
        return self._to_complainant(
            session,
            ticket,
            "rejection",
            subject=f"[{ticket.reference}] Pengaduan tidak dapat diproses: "
            f"{citizen_subject(ticket.subject)}",
            fields=fields,
            now=now,
        )

    def forwarded(
        self,
        session: Session,
        ticket: Ticket,
        by: StaffConfig,
        note: str,
        now: datetime,
    ) -> list[OutboxItem]:
        """Tell the ticket's new unit that the ticket is theirs now."""
        complaint = _first_complaint(ticket)
        fields = self.letters.ticket_fields(ticket)
        fields.update(
            complainant_email=ticket.complainant_email,
            text=complaint.text if complaint else "",
            attachments=list(complaint.attachments) if complaint else [],
            matched_keywords=list(ticket.matched_keywords),
            forwarded_by=by.name,
            forward_note=note,
            related=[],
        )
        letter = self.letters.staff_letter(
            ticket,
            "unit_notification",
            "Disposisi pengaduan",
            "staff/new_ticket",
            fields,
        )
        return self.letters.send_to_unit(session, ticket, letter, now)

    def reopened(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> list[OutboxItem]:
        """Tell the unit that the complainant is not satisfied with the answer."""
        fields = self.letters.ticket_fields(ticket)
        fields.update(
            text=notice_text(received.text),
            attachments=[],
            status=str(ticket.status),
            received_at=received.at,
            reopened=True,
        )
        letter = self.letters.staff_letter(
            ticket,
            "follow_up_notification",
            "Dibuka kembali oleh pelapor",
            "staff/follow_up",
            fields,
        )
        return self.letters.send_to_unit(session, ticket, letter, now)

    def approval_request(
        self,
        session: Session,
        ticket: Ticket,
        draft: str,
        *,
        author: StaffConfig,
        approvers: list[str],
        then_to: str | None,
        now: datetime,
    ) -> list[OutboxItem]:
        """Ask each approver to approve or revise a unit's draft response;
        ``then_to`` is the post an approval passes it to, None for the last."""
        fields = self.letters.ticket_fields(ticket)
        # The approver checks the answer against the question, and against
        # the complainant's latest word (why a reopened ticket was reopened).
        complaint = _first_complaint(ticket)
        latest = _latest_follow_up(ticket)
        fields.update(
            draft=draft,
            author=author.name,
            then_to=then_to,
            complaint=notice_text(complaint.text) if complaint else "",
            latest=notice_text(latest.text) if latest else "",
            latest_at=latest.at if latest else None,
        )
        letter = self.letters.staff_letter(
            ticket,
            "approval_request",
            "Mohon persetujuan tanggapan",
            "staff/approval_request",
            fields,
        )
        return [
            self.letters.send(session, ticket, replace(letter, to=(address,)), now)
            for address in approvers
        ]

    def to_staff(
        self,
        session: Session,
        ticket: Ticket,
        received: Received,
        answer: StaffAnswer,
        now: datetime,
    ) -> OutboxItem:
        """Mailbot's answer to a staff member's reply, threaded under it."""
        fields = self.letters.ticket_fields(ticket)
        fields.update(
            lines=answer.lines,
            summary=answer.status,
            show_help=answer.show_help,
        )
        letter = Letter(
            kind="command_reply",
            to=(received.mail.sender_address,),
            subject=f"[{ticket.reference}] Balasan sistem: {ticket.subject}",
            body=self.renderer.render("staff/command_reply", fields),
            reply_to=ticket.inbox_address,
            in_reply_to=received.message_id,
            references=(*received.mail.references, received.message_id),
            auto_submitted="auto-replied",
        )
        return self.letters.send(session, ticket, letter, now)

    def to_unit(
        self, session: Session, ticket: Ticket, lines: list[str], now: datetime
    ) -> list[OutboxItem]:
        """A short message from mailbot to the ticket's unit."""
        letter = self._message(ticket, "unit_message", lines)
        return self.letters.send_to_unit(session, ticket, letter, now)

    def to_addresses(
        self,
        session: Session,
        ticket: Ticket,
        lines: list[str],
        addresses: list[str],
        now: datetime,
    ) -> list[OutboxItem]:
        """A short message from mailbot to some staff about a ticket."""
        letter = self._message(ticket, "staff_message", lines)
        return [
            self.letters.send(session, ticket, replace(letter, to=(address,)), now)
            for address in addresses
        ]

    def _message(self, ticket: Ticket, kind: str, lines: list[str]) -> Letter:
        fields = self.letters.ticket_fields(ticket)
        fields.update(lines=lines, summary=None, show_help=False, unsolicited=True)
        return self.letters.staff_letter(
            ticket, kind, "Pesan sistem", "staff/command_reply", fields
        )

    def _citizen_fields(self, ticket: Ticket) -> dict[str, Any]:
        fields = self.letters.ticket_fields(ticket)
        fields.update(
            subject=citizen_subject(ticket.subject),
            inbox_address=ticket.inbox_address,
            reopen_days=self.settings.workflow.reopen_days,
        )
        return fields

    def _to_complainant(
        self,
        session: Session,
        ticket: Ticket,
        kind: str,
        *,
        subject: str,
        fields: dict[str, Any],
        now: datetime,
    ) -> OutboxItem:
        complaint = _first_complaint(ticket)
        original = complaint.message_id if complaint else ""
        letter = Letter(
            kind=kind,
            to=(ticket.complainant_email,),
            subject=subject,
            body=self.renderer.render(f"citizen/{kind}", fields),
            reply_to=ticket.inbox_address,
            in_reply_to=original,
            references=(original,) if original else (),
        )
        return self.letters.send(session, ticket, letter, now)


def _latest_follow_up(ticket: Ticket) -> Message | None:
    return next(
        (m for m in reversed(ticket.messages) if m.kind == "follow_up"),
        None,
    )


def _first_complaint(ticket: Ticket) -> Message | None:
    return next(
        (m for m in ticket.messages if m.direction == Direction.IN),
        None,
    )
