"""Approval of draft responses: which posts approve, in what order, who is next.

With ``[workflow] approval`` set, a unit's #tanggapan is a draft that climbs the
approving posts in the order of the verification chain; each post's #setuju
passes it to the next post someone holds, and the last one sends it. A post
above the last approving one may approve too, and covers those below it. Read
by the staff desk to judge #setuju and by the SLA sweep to remind the post a
draft waits for.
"""

from __future__ import annotations

from mailbot.config import Settings, StaffConfig
from mailbot.models import Event, Ticket
from mailbot.policy import VERIFICATION_CHAIN, Role


def pending_draft(ticket: Ticket) -> Event | None:
    """The newest draft response not yet sent or sent back."""
    for event in reversed(ticket.events):
        if event.action == "draft":
            return event
        if event.action in ("draft_revised", "draft_withdrawn", "answered"):
            return None
    return None


class Approval:
    """The approving posts of the office and where a ticket's draft stands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def chain(self) -> list[Role]:
        """The approving posts in the order of the verification chain."""
        roles = self.settings.workflow.approval
        return [role for role in VERIFICATION_CHAIN if role in roles]

    def first_post(self) -> Role | None:
        """The first approving post that someone holds: drafts go there."""
        return self.settings.first_held(self.chain())

    def approves(self, staff: StaffConfig) -> bool:
        """Whether ``staff`` holds an approving post, or one above them all."""
        return self._post(staff) >= 0

    def may_approve(self, ticket: Ticket, staff: StaffConfig) -> bool:
        """Whether ``staff``'s post has yet to approve the pending draft; a
        higher post's approval covers the lower ones."""
        return self._post(staff) > self._reached(ticket)

    def after(self, post: Role) -> Role | None:
        """The approving post someone holds after ``post``; None at the top."""
        chain = self.chain()
        if post not in chain:
            return None
        return self.settings.first_held(chain[chain.index(post) + 1 :])

    def next_post(self, staff: StaffConfig) -> Role | None:
        """The post that approves after ``staff``'s; None when theirs is the last."""
        return self.settings.first_held(self.chain()[self._post(staff) + 1 :])

    def awaiting(self, ticket: Ticket) -> Role | None:
        """The post the ticket's pending draft waits for; None without a draft."""
        if pending_draft(ticket) is None:
            return None
        return self.settings.first_held(self.chain()[self._reached(ticket) + 1 :])

    def _post(self, staff: StaffConfig) -> int:
        """The staff member's place among the approving posts, -1 for none.

        A post above the last approving one (the Camat when only the Sekcam
        approves) stands beyond it: it may approve, and covers the others.
        """
        chain = self.chain()
        if staff.role in chain:
            return chain.index(staff.role)
        if chain and staff.role in VERIFICATION_CHAIN:
            above = VERIFICATION_CHAIN.index(staff.role)
            if above > VERIFICATION_CHAIN.index(chain[-1]):
                return len(chain)
        return -1

    def _reached(self, ticket: Ticket) -> int:
        """The highest place whose post approved the pending draft, -1 for none."""
        chain = self.chain()
        approved = [chain.index(r) for r in self._approved_roles(ticket) if r in chain]
        return max(approved, default=-1)

    def _approved_roles(self, ticket: Ticket) -> list[Role]:
        draft = pending_draft(ticket)
        after = ticket.events[ticket.events.index(draft) + 1 :] if draft else []
        roles = []
        for event in after:
            member = self.settings.staff_member(event.actor)
            if event.action == "draft_approved" and member is not None:
                roles.append(member.role)
        return roles
