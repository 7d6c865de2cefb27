"""Staff commands: the table of #tags staff write in replies, and reading them.

Reads the new text of a staff reply (see ``replies``) and returns the commands it
gives, in order, with their arguments; writes nothing. What a command does is the
``Desk`` Protocol's business (``staffdesk`` implements it). The help that staff
receive is generated from ``COMMANDS``, so the two never disagree.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Desk(Protocol):
    """What staff commands act on: one ticket, one staff member, one message."""

    def answer(self, text: str) -> None:
        """Send the final response to the complainant."""

    def note(self, text: str) -> None:
        """Keep an internal note."""

    def forward(self, text: str) -> None:
        """Move the ticket to the unit named first in ``text``."""

    def reject(self, text: str) -> None:
        """Reject the complaint with this reason."""

    def verify(self, text: str) -> None:
        """Record the verification step."""

    def status(self, text: str) -> None:
        """Send the staff member the ticket's summary and history."""

    def help(self, text: str) -> None:
        """Send the staff member the list of commands."""

    def approve(self, text: str) -> None:
        """Send the pending draft response to the complainant as it is."""

    def revise(self, text: str) -> None:
        """Send the pending draft back to the unit with a note."""

    def close(self, text: str) -> None:
        """Close a reopened ticket again without a letter to the complainant."""


class Scope(enum.StrEnum):
    """Who may give a command."""

    ANYONE = "anyone"
    UNIT = "unit"  # staff of the ticket's unit, or a supervisor
    SUPERVISOR = "supervisor"  # operator, kasubag_umum, sekcam, camat
    APPROVER = "approver"  # the roles in [workflow] approval


@dataclass(frozen=True)
class Command:
    """One staff command: its tag, aliases, argument and what it does."""

    name: str
    aliases: tuple[str, ...]
    argument: str
    help: str
    scope: Scope
    changes_ticket: bool
    handler: Callable[[Desk, str], None]
    argument_required: bool = False

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag that calls this command, the Indonesian name first."""
        return (self.name, *self.aliases)

    @property
    def usage(self) -> str:
        """How the command is written, e.g. ``#teruskan UNIT``."""
        return f"#{self.name} {self.argument}".strip()


COMMANDS: tuple[Command, ...] = (
    Command(
        "tanggapan",
        ("balas", "reply"),
        "TEKS",
        "Kirim TEKS sebagai tanggapan akhir kepada pengadu; tiket selesai dijawab.",
        Scope.UNIT,
        True,
        lambda desk, text: desk.answer(text),
        argument_required=True,
    ),
    Command(
        "catatan",
        ("note",),
        "TEKS",
        "Simpan catatan internal; tidak pernah dikirim kepada pengadu.",
        Scope.UNIT,
        False,
        lambda desk, text: desk.note(text),
        argument_required=True,
    ),
    Command(
        "teruskan",
        ("disposisi", "assign"),
        "UNIT",
        "Pindahkan tiket ke unit lain (kode atau nama unit); unit itu diberi tahu.",
        Scope.SUPERVISOR,
        True,
        lambda desk, text: desk.forward(text),
        argument_required=True,
    ),
    Command(
        "tolak",
        ("reject",),
        "ALASAN",
        "Tolak pengaduan dengan ALASAN; pengadu diarahkan ke SP4N-LAPOR!.",
        Scope.SUPERVISOR,
        True,
        lambda desk, text: desk.reject(text),
        argument_required=True,
    ),
    Command(
        "selesai",
        ("close",),
        "ALASAN",
        "Tutup kembali tiket yang dibuka ulang oleh pengadu tanpa surat baru "
        "(hanya tiket yang pernah ditanggapi); ALASAN dicatat.",
        Scope.UNIT,
        True,
        lambda desk, text: desk.close(text),
        argument_required=True,
    ),
    Command(
        "verifikasi",
        ("verify",),
        "",
        "Catat bahwa pengaduan sudah diverifikasi (oleh siapa dan kapan).",
        Scope.UNIT,
        True,
        lambda desk, text: desk.verify(text),
    ),
    Command(
        "status",
        (),
        "",
        "Minta ringkasan dan riwayat tiket.",
        Scope.ANYONE,
        False,
        lambda desk, text: desk.status(text),
    ),
    Command(
        "bantuan",
        ("help",),
        "",
        "Minta daftar perintah ini.",
        Scope.ANYONE,
        False,
        lambda desk, text: desk.help(text),
    ),
    Command(
        "setuju",
        ("approve",),
        "",
        "Setujui draf tanggapan dan kirimkan kepada pengadu (khusus penyetuju).",
        Scope.APPROVER,
        True,
        lambda desk, text: desk.approve(text),
    ),
    Command(
        "revisi",
        ("revise",),
        "CATATAN",
        "Kembalikan draf tanggapan ke unit dengan CATATAN (khusus penyetuju).",
        Scope.APPROVER,
        True,
        lambda desk, text: desk.revise(text),
        argument_required=True,
    ),
)

_BY_TAG = {tag: command for command in COMMANDS for tag in command.tags}
# A colon after the tag is allowed: "#tanggapan: Lampu sudah diganti."
_TAG_LINE = re.compile(r"^[ \t]*#([A-Za-z]+)\b[ \t]*:?[ \t]*(.*)$")
# Social-media hashtags in a signature ("#SidoarjoBersih", "#porong #sidoarjo").
_CAMEL_CASE = re.compile(r"[a-z][A-Z]")
_HASHTAGS_ONLY = re.compile(r"^[ \t]*#\w+(?:[ \t]+#\w+)+[ \t]*$")
# A line "Catatan internal: ..." under a #tanggapan is meant for colleagues, not
# the complainant: it opens a #catatan of its own instead of joining the answer.
# Mail apps write a bold line as "*Catatan internal:*" in the plain part.
_INTERNAL_LINE = re.compile(
    r"^[ \t]*[*_]{0,2}"
    r"(?:(?:catatan[ \t]+(?:untuk[ \t]+)?|untuk[ \t]+|nb[ \t]*\(?[ \t]*)"
    r"intern(?:al)?\)?[*_]{0,2}[ \t]*:?|intern(?:al)?[*_]{0,2}[ \t]*:)"
    r"[*_]{0,2}[ \t]*(.*)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Invocation:
    """A command as written in one reply."""

    command: Command
    argument: str


@dataclass(frozen=True)
class Instructions:
    """The commands of one reply, and what could not be read (in Indonesian)."""

    invocations: tuple[Invocation, ...]
    problems: tuple[str, ...]


def find_command(tag: str) -> Command | None:
    """The command called by ``tag`` (without ``#``), any case."""
    return _BY_TAG.get(tag.lower())


def read_commands(text: str) -> Instructions:
    """The tags at the start of lines, each with the text up to the next tag."""
    invocations: list[Invocation] = []
    problems: list[str] = []
    for tag, argument in _tagged_blocks(text):
        command = find_command(tag)
        if command is None:
            problems.append(f"Perintah #{tag} tidak dikenal.{_suggestion(tag)}")
        elif command.argument_required and not argument:
            problems.append(f"Perintah #{command.name} perlu {command.argument}.")
        else:
            invocations.append(Invocation(command, argument))
    return Instructions(tuple(invocations), tuple(problems))


def _suggestion(tag: str) -> str:
    # A tag one or two letters off is a typo more often than a new command.
    close = difflib.get_close_matches(tag.lower(), _BY_TAG, n=1, cutoff=0.75)
    return f" Maksud Anda #{close[0]}?" if close else ""


def _tagged_blocks(text: str) -> list[tuple[str, str]]:
    # A hashtag line opens a block of its own that is then dropped, so that a
    # signature's "#SidoarjoBersih" neither fails the reply nor joins the text
    # of the command above it.
    blocks: list[tuple[str | None, list[str]]] = []
    for line in text.splitlines():
        match = _TAG_LINE.match(line)
        internal = _INTERNAL_LINE.match(line) if blocks else None
        if match is not None:
            tag = None if _is_hashtag(match[1], line) else match[1]
            blocks.append((tag, [match[2]]))
        elif internal is not None:
            blocks.append(("catatan", [internal[1]]))
        elif blocks:
            blocks[-1][1].append(line)
    return [(tag, "\n".join(lines).strip()) for tag, lines in blocks if tag is not None]


def _is_hashtag(tag: str, line: str) -> bool:
    # A lone lower-case "#porongbersinar" stays a command, refused as unknown:
    # read as a signature, a "#tutup" meant as a command would pass silently.
    if find_command(tag) is not None:
        return False
    return bool(_CAMEL_CASE.search(tag) or _HASHTAGS_ONLY.match(line))


def help_rows(*, approval: bool = True) -> list[dict[str, str]]:
    """The command table as fields for the help templates.

    Without ``approval`` the approvers' commands are left out.
    """
    return [
        {
            "usage": command.usage,
            "aliases": ", ".join(f"#{alias}" for alias in command.aliases),
            "help": command.help,
        }
        for command in COMMANDS
        if approval or command.scope != Scope.APPROVER
    ]
