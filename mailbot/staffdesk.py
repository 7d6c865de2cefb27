"""Staff desk: carries out the commands of a staff reply on its ticket.

Reads the reply's new text, checks every command against the sender's role and
the ticket's state, and only when all of them are allowed carries them out:
status changes, events with actor and time, letters to the complainant, the
units and the sender. Runs inside intake's transaction for the message. Nothing
a staff member writes reaches a complainant except through #tanggapan, #tolak
or an approved draft.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mailbot.approval import Approval, pending_draft
from mailbot.commands import Instructions, Invocation, Scope, read_commands
from mailbot.commitlog import on_commit
from mailbot.config import Settings, StaffConfig, UnitConfig
from mailbot.deskletters import DeskLetters, StaffAnswer
from mailbot.errors import CommandError
from mailbot.letters import Received
from mailbot.models import Event, Ticket, TicketStatus
from mailbot.policy import POST_TITLES, Role
from mailbot.replies import without_salutation, without_sign_off
from mailbot.tickets import change_status, record_event

log = logging.getLogger(__name__)

CLOSED = (TicketStatus.ANSWERED, TicketStatus.REJECTED)
# Commands that decide what the complainant hears; one per reply, or it is unclear.
DECISIONS = frozenset({"tanggapan", "tolak", "setuju", "revisi", "selesai"})
APPROVER_HINT = (
    "Balasan Bapak/Ibu disimpan sebagai catatan internal; draf BELUM disetujui. "
    "Untuk menyetujui draf, tulis #setuju di awal baris; untuk mengembalikannya "
    "ke unit, tulis #revisi diikuti catatan."
)
NO_TAG_HINT = (
    "Balasan Bapak/Ibu disimpan sebagai catatan internal dan TIDAK dikirim kepada "
    "pengadu. Untuk mengirim tanggapan, tulis #tanggapan di awal baris, diikuti "
    "teks tanggapan."
)


@dataclass(frozen=True)
class DeskResult:
    """What a staff reply did: the actions carried out, or why none were."""

    actions: tuple[str, ...]
    refused: tuple[str, ...]


class StaffDesk:
    """Executes staff commands on tickets."""

    def __init__(self, settings: Settings, letters: DeskLetters) -> None:
        self.settings = settings
        self.letters = letters
        self.approval = Approval(settings)

    def handle(
        self,
        session: Session,
        ticket: Ticket,
        staff: StaffConfig,
        received: Received,
        now: datetime,
        *,
        answers: str = "",
    ) -> DeskResult:
        """Carry out a staff reply's commands, or refuse them all and say why.

        ``answers`` is the kind of our letter the reply answers, when known.
        """
        instructions = read_commands(received.text)
        turn = _Turn(self, session, ticket, staff=staff, received=received, now=now)
        if not instructions.invocations and not instructions.problems:
            # The sender was told how to answer in the letter they reply to: a
            # second hint would start a loop with an out-of-office responder.
            approving = answers in _DRAFT_LETTERS and pending_draft(ticket) is not None
            return turn.untagged(
                hint=APPROVER_HINT if approving else NO_TAG_HINT,
                once=answers == "command_reply",
            )

        problems = [*instructions.problems, *self._refusals(instructions, turn)]
        if problems:
            return turn.refuse(problems)
        # A #catatan beside a #teruskan is meant for the unit it goes to.
        turn.notes = [
            i.argument for i in instructions.invocations if i.command.name == "catatan"
        ]
        for invocation in instructions.invocations:
            invocation.command.handler(turn, invocation.argument)
            turn.actions.append(invocation.command.name)
        return turn.finish()

    def _refusals(self, instructions: Instructions, turn: _Turn) -> list[str]:
        problems = [
            problem
            for invocation in instructions.invocations
            if (problem := self._refusal(invocation, turn))
        ]
        names = [i.command.name for i in instructions.invocations]
        if sum(name in DECISIONS for name in names) > 1:
            problems.append(
                "Satu balasan hanya boleh berisi satu #tanggapan, #tolak, #setuju, "
                "#revisi atau #selesai."
            )
        if names.count("teruskan") > 1:
            problems.append("Satu balasan hanya boleh berisi satu #teruskan.")
        if "teruskan" in names and any(name in DECISIONS for name in names):
            # Checked against the ticket as it is now: a #teruskan withdraws the
            # draft a #setuju would send, a #setuju answers the ticket it moves.
            problems.append(
                "#teruskan tidak dapat digabung dengan #tanggapan, #tolak, #setuju, "
                "#revisi atau #selesai dalam satu balasan; kirimkan dalam dua balasan."
            )
        return problems

    def _refusal(self, invocation: Invocation, turn: _Turn) -> str:
        command, ticket = invocation.command, turn.ticket
        if not self.may(turn.staff, command.scope, ticket):
            return f"#{command.name}: {_scope_reason(command.scope)}"
        if command.changes_ticket and ticket.status in CLOSED:
            return f"#{command.name}: tiket sudah {_closed_word(ticket)}."
        if command.name == "teruskan":
            return self._forward_refusal(invocation.argument, ticket)
        if command.name == "selesai" and _last_closing(ticket) is None:
            return (
                "#selesai: tiket ini belum pernah ditanggapi; kirim #tanggapan "
                "kepada pengadu."
            )
        return self._draft_refusal(command.name, command.scope, turn)

    def _draft_refusal(self, name: str, scope: Scope, turn: _Turn) -> str:
        ticket, staff = turn.ticket, turn.staff
        if scope == Scope.APPROVER and pending_draft(ticket) is None:
            return f"#{name}: tidak ada draf tanggapan yang menunggu."
        if name == "setuju" and not self.approval.may_approve(ticket, staff):
            return "#setuju: draf sudah disetujui pada jabatan Bapak/Ibu."
        if name in ("setuju", "revisi") and _answers_an_older_draft(turn):
            return (
                f"#{name}: email yang Bapak/Ibu balas memuat draf lama yang sudah "
                "diganti. Mohon baca draf terbaru pada permintaan persetujuan "
                "berikutnya dan balas email itu."
            )
        if name == "setuju" and not _read_the_pending_draft(turn):
            return (
                "#setuju: draf yang menunggu belum dikirim kepada Bapak/Ibu. Mohon "
                "balas email permintaan persetujuan yang memuat teks draf itu, agar "
                "yang disetujui adalah teks yang Bapak/Ibu baca."
            )
        if name == "tanggapan" and self.needs_approval(staff) and pending_draft(ticket):
            # An approval answers the draft its approver read: a second draft
            # while one is out would take approvals meant for the first.
            return (
                "#tanggapan: draf sebelumnya masih menunggu persetujuan; "
                "penyetuju dapat mengembalikannya dengan #revisi."
            )
        return ""

    def _forward_refusal(self, argument: str, ticket: Ticket) -> str:
        found = self.find_unit(argument)
        if found is None:
            codes = ", ".join(u.code for u in self.settings.units)
            first = (argument.split(maxsplit=1) or [""])[0]
            return f"#teruskan: unit {first!r} tidak dikenal (pilihan: {codes})."
        unit, _ = found
        if unit.code == ticket.unit_code:
            return f"#teruskan: tiket sudah berada di {unit.name}."
        return ""

    def may(self, staff: StaffConfig, scope: Scope, ticket: Ticket) -> bool:
        """Whether this staff member may give a command of this scope here."""
        supervisor = staff.role != "unit"
        if scope == Scope.ANYONE:
            return True
        if scope == Scope.UNIT:
            return supervisor or staff.unit == ticket.unit_code
        if scope == Scope.SUPERVISOR:
            return supervisor
        return self.approval.approves(staff)

    def find_unit(self, argument: str) -> tuple[UnitConfig, str] | None:
        """The unit named at the start of ``argument``, by code or by name, and
        the rest of the argument (a note for the unit)."""
        first_line, _, below = (argument or "").strip().partition("\n")
        words = first_line.split()
        # The longest run of leading words that names a unit wins: "Seksi
        # Pemerintahan, mohon dicek" names pemerintahan and leaves the note.
        for size in range(len(words), 0, -1):
            named = " ".join(words[:size]).casefold().rstrip(",.:;-")
            unit = self._unit_named(named)
            if unit is not None:
                rest = " ".join(words[size:]).lstrip(",.:;- ")
                return unit, "\n".join(part for part in (rest, below.strip()) if part)
        return None

    def _unit_named(self, named: str) -> UnitConfig | None:
        for unit in self.settings.units:
            name = unit.name.casefold()
            short = name.removeprefix("seksi ").removeprefix("sekretariat ")
            if named in (
                unit.code,
                name,
                short,
                f"seksi {unit.code}",
                f"sie {unit.code}",
            ):
                return unit
        return None

    def needs_approval(self, staff: StaffConfig) -> bool:
        """Whether this staff member's #tanggapan goes to the approvers first:
        when an approving post someone holds stands above theirs."""
        if not self.settings.workflow.approval:
            return False
        if self.approval.first_post() is None:
            log.warning("workflow.approval names roles no staff member has")
            return False
        return self.approval.next_post(staff) is not None


class _Turn:
    """One staff reply being carried out; implements ``commands.Desk``."""

    def __init__(
        self,
        desk: StaffDesk,
        session: Session,
        ticket: Ticket,
        *,
        staff: StaffConfig,
        received: Received,
        now: datetime,
    ) -> None:
        self.desk, self.session, self.ticket = desk, session, ticket
        self.staff, self.received, self.now = staff, received, now
        self.letters = desk.letters
        self.answer_to_staff = StaffAnswer()
        self.actions: list[str] = []
        self.notes: list[str] = []
        # What a direct #tanggapan or #tolak sent the complainant, said first
        # in a system reply that goes to the sender for another reason.
        self.sent_to_complainant = ""

    def _event(self, action: str, detail: str = "") -> None:
        record_event(
            self.session,
            self.ticket,
            action,
            detail,
            at=self.now,
            actor=self.staff.email,
        )

    def _status(self, status: TicketStatus) -> None:
        change_status(
            self.session, self.ticket, status, at=self.now, actor=self.staff.email
        )

    def _start(self) -> None:
        if self.ticket.status == TicketStatus.RECEIVED:
            self._status(TicketStatus.IN_PROGRESS)

    def answer(self, text: str) -> None:
        text = self._for_the_complainant(text)
        if self.desk.needs_approval(self.staff):
            self._draft(text)
            return

        replaced = pending_draft(self.ticket)
        self._send_response(text)
        self.sent_to_complainant = "Tanggapan telah dikirim kepada pengadu."
        if replaced is not None:
            # A post that may answer directly did, over a draft still waiting:
            # its author and its approvers stop working on it.
            lines = [
                f"Tanggapan akhir dikirim langsung oleh {self.staff.name}; draf "
                "yang menunggu persetujuan tidak dipakai."
            ]
            self.letters.to_unit(self.session, self.ticket, lines, self.now)
            self._release_other_approvers(replaced, lines)

    def _send_response(self, text: str) -> None:
        self.letters.final_response(self.session, self.ticket, text, self.now)
        self._event("answered", f"final response sent by {self.staff.name}")
        self._status(TicketStatus.ANSWERED)

    def _draft(self, text: str) -> None:
        post = self.desk.approval.next_post(self.staff)
        if post is None:  # needs_approval said there is one
            raise CommandError("a draft with nobody to approve it")
        self._ask_approval(text, self.staff, post)
        self._event("draft", text)
        if self.desk.approval.approves(self.staff):
            # A Kasubag who writes the answer has approved it at that post;
            # the posts above still approve in turn.
            self._event("draft_approved", f"approved by {self.staff.name}")
        self._start()
        self.answer_to_staff.lines.append(
            "Draf tanggapan dikirim kepada penyetuju; pengadu belum menerimanya."
        )

    def _ask_approval(self, draft: str, author: StaffConfig, post: Role) -> None:
        following = self.desk.approval.after(post)
        self.letters.approval_request(
            self.session,
            self.ticket,
            draft,
            author=author,
            approvers=list(self.desk.settings.staff_with_role(post)),
            then_to=POST_TITLES[following] if following else None,
            now=self.now,
        )

    def note(self, text: str) -> None:
        self._event("note", without_sign_off(text))
        self._start()

    def forward(self, text: str) -> None:
        found = self.desk.find_unit(text)
        if found is None:  # checked before any command ran
            raise CommandError("forward to an unknown unit")
        unit, rest = found
        old = self.ticket.unit_code
        self._withdraw_draft(unit)
        # Told while the ticket is still theirs, so that they stop work on it.
        moved = (
            f"Tiket ini dipindahkan ke {unit.name} oleh {self.staff.name}; "
            "unit itu yang kini menanganinya."
        )
        self.letters.to_unit(self.session, self.ticket, [moved], self.now)
        self.ticket.unit_code = unit.code
        self._event(
            "forwarded", f"{old} -> {unit.code}" + (f": {rest}" if rest else "")
        )
        on_commit(
            self.session,
            log.info,
            "ticket %s: forwarded %s -> %s",
            self.ticket.reference,
            old,
            unit.code,
        )
        note = without_sign_off(
            "\n\n".join(part for part in (rest, *self.notes) if part)
        )
        self.letters.forwarded(self.session, self.ticket, self.staff, note, self.now)
        self.answer_to_staff.lines.append(
            f"Tiket diteruskan ke {unit.name}; unit itu sudah diberi tahu."
        )

    def reject(self, text: str) -> None:
        text = self._for_the_complainant(text)
        self.letters.rejection(self.session, self.ticket, text, self.now)
        self._event("rejected", text)
        self._status(TicketStatus.REJECTED)
        self.sent_to_complainant = "Surat penolakan telah dikirim kepada pengadu."

    def _for_the_complainant(self, text: str) -> str:
        kept = without_sign_off(text)
        if kept != text.rstrip():
            self.answer_to_staff.lines.append(
                "Salam penutup dan tanda tangan Bapak/Ibu tidak disertakan dalam "
                "surat kepada pengadu; surat ditutup atas nama kantor."
            )
        greeted = without_salutation(kept)
        if greeted != kept:
            self.answer_to_staff.lines.append(
                "Sapaan pembuka Bapak/Ibu tidak disertakan; surat sudah menyapa "
                "pengadu."
            )
        return greeted

    def close(self, text: str) -> None:
        closing = _last_closing(self.ticket)
        if closing is None:  # checked before any command ran
            raise CommandError("closing a ticket that was never answered")
        self._event("closed", text)
        self._status(closing)
        self.answer_to_staff.lines.append(
            "Tiket ditutup kembali tanpa surat kepada pengadu."
        )

    def verify(self, text: str) -> None:
        detail = f"verified by {self.staff.name} ({self.staff.role})"
        self._event("verified", detail + (f": {text}" if text else ""))
        self._start()

    def status(self, text: str) -> None:
        self.session.flush()
        ticket = self.ticket
        awaiting = self.desk.approval.awaiting(ticket)
        self.answer_to_staff.status = {
            "reference": ticket.reference,
            "status": str(ticket.status),
            "awaiting": POST_TITLES[awaiting] if awaiting else None,
            "unit": ticket.unit_code,
            "history": [
                {"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail}
                for e in ticket.events
            ],
        }

    def help(self, text: str) -> None:
        self.answer_to_staff.show_help = True

    def approve(self, text: str) -> None:
        draft = pending_draft(self.ticket)
        if draft is None:  # checked before any command ran
            raise CommandError("approval without a pending draft")
        self._event("draft_approved", f"approved by {self.staff.name}")
        following = self.desk.approval.next_post(self.staff)
        if following is None:
            self._send_response(draft.detail)
            # The author and the approver both learn that the citizen has it.
            sent = "Tanggapan telah dikirim kepada pengadu."
            lines = [f"Draf tanggapan disetujui oleh {self.staff.name}. {sent}"]
            self.letters.to_unit(self.session, self.ticket, lines, self.now)
            self.answer_to_staff.lines.append(f"Draf disetujui. {sent}")
            released = [
                f"Draf tanggapan sudah disetujui oleh {self.staff.name} dan dikirim "
                "kepada pengadu; permintaan persetujuan untuk draf ini tidak perlu "
                "ditindaklanjuti lagi."
            ]
            self._release_other_approvers(draft, released)
            return

        # The next post of the chain approves the same draft in turn.
        author = self.desk.settings.staff_member(draft.actor) or self.staff
        self._ask_approval(draft.detail, author, following)
        self.answer_to_staff.lines.append(
            f"Draf disetujui dan diteruskan kepada {POST_TITLES[following]} untuk "
            "persetujuan berikutnya; pengadu belum menerimanya."
        )

    def _withdraw_draft(self, unit: UnitConfig) -> None:
        # The unit a ticket moves to writes its own answer: the old unit's
        # draft would otherwise block it and could still be approved.
        draft = pending_draft(self.ticket)
        if draft is None:
            return
        self._event("draft_withdrawn", f"ticket moved to {unit.code}")
        lines = [
            f"Tiket ini dipindahkan ke {unit.name} oleh {self.staff.name}; draf "
            "tanggapan yang menunggu persetujuan tidak dipakai lagi dan tidak "
            "perlu ditindaklanjuti."
        ]
        self._release_other_approvers(draft, lines)

    def _release_other_approvers(self, draft: Event, lines: list[str]) -> None:
        # Those still holding a request for this draft are told it needs
        # nothing more from them.
        asked = {
            address.lower(): address
            for message in self.ticket.messages
            if message.kind == "approval_request" and message.at >= draft.at
            for address in message.recipients
        }
        heard = {
            event.actor.lower()
            for event in self.ticket.events
            if event.action == "draft_approved" and event.at >= draft.at
        }
        heard.add(self.staff.email.lower())
        waiting = [a for key, a in asked.items() if key not in heard]
        if not waiting:
            return

        self.letters.to_addresses(self.session, self.ticket, lines, waiting, self.now)

    def revise(self, text: str) -> None:
        draft = pending_draft(self.ticket)
        self._event("draft_revised", text)
        lines = [f"Draf tanggapan dikembalikan oleh {self.staff.name}:", text]
        if draft is not None:
            lines += ["Draf yang dikembalikan:", draft.detail]
        lines.append("Kirim #tanggapan baru dengan draf yang sudah diperbaiki.")
        self.letters.to_unit(self.session, self.ticket, lines, self.now)
        self.answer_to_staff.lines.append(
            "Draf dikembalikan kepada unit bersama catatan Bapak/Ibu; pengadu belum "
            "menerimanya."
        )

    def untagged(self, *, hint: str, once: bool) -> DeskResult:
        """A reply without a tag: kept as a note; the sender told how to answer,
        unless ``once``: the reply answers the hint itself."""
        self._event("note", self.received.text)
        self._start()
        if not once:
            self.answer_to_staff.lines.append(hint)
        self.actions.append("note")
        return self.finish()

    def refuse(self, problems: list[str]) -> DeskResult:
        """Change nothing; tell the sender what was wrong."""
        self._event("command_refused", "; ".join(problems))
        on_commit(
            self.session,
            log.warning,
            # The problems are written in Indonesian for the sender; the log
            # says how many, and the ticket's history holds them.
            "ticket %s: staff command refused (problems: %d); sender told why",
            self.ticket.reference,
            len(problems),
        )
        self.answer_to_staff.lines.extend(
            ["Perintah tidak dijalankan; tiket tidak berubah.", *problems]
        )
        self.answer_to_staff.show_help = True
        self._reply()
        return DeskResult((), tuple(problems))

    def finish(self) -> DeskResult:
        if self.answer_to_staff and self.sent_to_complainant:
            self.answer_to_staff.lines.insert(0, self.sent_to_complainant)
        self._reply()
        return DeskResult(tuple(self.actions), ())

    def _reply(self) -> None:
        if self.answer_to_staff:
            self.letters.to_staff(
                self.session, self.ticket, self.received, self.answer_to_staff, self.now
            )


def _answers_an_older_draft(turn: _Turn) -> bool:
    """Whether the reply answers an approval request of a draft since replaced."""
    # An approver approves the text they read: the request they answer must
    # be of the pending draft, not of one sent back and rewritten since.
    draft = pending_draft(turn.ticket)
    cited = set(turn.received.mail.in_reply_to)
    requests = [
        m
        for m in turn.ticket.messages
        if m.kind == "approval_request" and m.message_id in cited
    ]
    return draft is not None and any(m.at < draft.at for m in requests)


_DRAFT_LETTERS = frozenset({"approval_request", "sla_reminder", "sla_escalation"})


def _read_the_pending_draft(turn: _Turn) -> bool:
    """Whether the approver was sent the pending draft's text, and answers it.

    A reply to another letter of ours (a system reply, the digest) must not
    approve a draft its sender never saw; a new mail naming the ticket may,
    from an approver a letter showing the draft went to.
    """
    draft = pending_draft(turn.ticket)
    if draft is None:
        return False
    sender = turn.staff.email.lower()
    # Each of these letters, sent while the draft waited, shows it whole.
    requests = {
        m.message_id
        for m in turn.ticket.messages
        if m.kind in _DRAFT_LETTERS
        and m.at >= draft.at
        and sender in (r.lower() for r in m.recipients)
    }
    ours = {m.message_id for m in turn.ticket.messages if m.direction == "out"}
    answered = [i for i in turn.received.mail.in_reply_to if i in ours]
    if answered:
        return any(i in requests for i in answered)
    return bool(requests)


def _scope_reason(scope: Scope) -> str:
    reasons = {
        Scope.UNIT: "hanya untuk staf unit yang menangani tiket ini atau pimpinan.",
        Scope.SUPERVISOR: "hanya untuk operator, Kasubag Umum, Sekcam atau Camat.",
        Scope.APPROVER: "hanya untuk penyetuju tanggapan.",
    }
    return reasons.get(scope, "tidak diizinkan.")


def _last_closing(ticket: Ticket) -> TicketStatus | None:
    """The state a ticket was last closed in, None if it never was."""
    for event in reversed(ticket.events):
        if event.action == "answered":
            return TicketStatus.ANSWERED
        if event.action == "rejected":
            return TicketStatus.REJECTED
    return None


def _closed_word(ticket: Ticket) -> str:
    return "dijawab" if ticket.status == TicketStatus.ANSWERED else "ditolak"
