"""Rendering: turns a plain dict of fields into the text and HTML parts of a mail.

Reads the Jinja2 templates under ``templates/<audience>/<purpose>.{txt,html}.j2``
and writes nothing; the caller puts the parts into a message. Indonesian date,
duration and size wording lives here so every template says them the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from mailbot.commands import help_rows
from mailbot.errors import MessageError

log = logging.getLogger(__name__)

DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)
# The official Indonesian names, written out so they do not depend on tzdata's
# abbreviation table.
INDONESIAN_ZONES = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Ujung_Pandang": "WITA",
    "Asia/Jayapura": "WIT",
}

# Ticket states (mailbot.models.TicketStatus values) as staff read them.
STATUS_LABELS = {
    "received": "diterima",
    "in_progress": "sedang ditangani",
    "answered": "sudah dijawab",
    "rejected": "ditolak",
}


@dataclass(frozen=True)
class Rendered:
    """The two alternative parts of one outgoing mail."""

    text: str
    html: str


def default_templates_dir() -> Path:
    """The top-level ``templates/`` of a checkout, else the installed copy."""
    # This module's own path, not mailbot.__file__: an editable install made
    # before __init__.py existed imports mailbot as a namespace (no __file__).
    checkout = Path(__file__).resolve().parents[1] / "templates"
    if checkout.is_dir():
        return checkout
    # A wheel carries them as data files (pyproject: tool.setuptools.data-files).
    return Path(sys.prefix) / "share" / "mailbot" / "templates"


def format_wib(moment: datetime, timezone: str = "Asia/Jakarta") -> str:
    """An aware moment in Indonesian: ``Kamis, 3 Desember 2026 pukul 20.41 WIB``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_wib needs a timezone-aware datetime")

    local = moment.astimezone(ZoneInfo(timezone))
    zone = INDONESIAN_ZONES.get(timezone) or local.tzname() or timezone

    day = DAYS[local.weekday()]
    month = MONTHS[local.month - 1]
    return (
        f"{day}, {local.day} {month} {local.year} "
        f"pukul {local.hour:02d}.{local.minute:02d} {zone}"
    )


def format_duration(delta: timedelta) -> str:
    """A span in Indonesian, its two largest units, e.g. ``1 hari 2 jam``.

    The sign is dropped: "late by" or "left" is the template's wording.
    """
    minutes = int(abs(delta).total_seconds()) // 60
    if minutes == 0:
        return "kurang dari 1 menit"

    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    units = [(days, "hari"), (hours, "jam"), (minutes, "menit")]
    parts = [f"{count} {word}" for count, word in units if count]
    return " ".join(parts[:2])


def format_office_duration(delta: timedelta) -> str:
    """Office time in hours and minutes, e.g. ``24 jam waktu kerja``.

    Never in days: 24 office hours are three working days, not "1 hari".
    """
    minutes = int(abs(delta).total_seconds()) // 60
    if minutes == 0:
        return "kurang dari 1 menit waktu kerja"

    hours, minutes = divmod(minutes, 60)
    units = [(hours, "jam"), (minutes, "menit")]
    parts = [f"{count} {word}" for count, word in units if count]
    return " ".join(parts) + " waktu kerja"


def format_response_window(hours: int) -> str:
    """The promised response time as offices write it: ``1x24 jam``, ``36 jam``."""
    if hours > 0 and hours % 24 == 0:
        return f"{hours // 24}x24 jam"
    return f"{hours} jam"


def format_size(size: int) -> str:
    """A byte count in Indonesian notation (decimal comma), e.g. ``12,5 KB``."""
    if size < 1024:
        return f"{size} B"

    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}".replace(".", ",")


def status_label(status: str) -> str:
    """A ticket state in Indonesian; an unknown value is shown as given."""
    return STATUS_LABELS.get(status, status)


# Event details are written in English, the language of the logs; staff read a
# ticket's history in Indonesian. The phrases mailbot itself writes, in order.
_HISTORY_PHRASES = (
    (re.compile(r"\(keywords: "), "(kata kunci: "),
    (re.compile(r"^via signed-id$"), "membalas surat dari sistem"),
    (re.compile(r"^via message-id$"), "membalas email pada tiket ini"),
    (re.compile(r"^via subject$"), "nomor pengaduan di subjek"),
    (
        re.compile(r"^via subject, check digit corrected$"),
        "nomor pengaduan di subjek (digit terakhir dibetulkan)",
    ),
    (re.compile(r"^mentions "), "menyebut "),
    (
        re.compile(r"^reply to a staff letter$"),
        "balasan dari luar staf atas email staf",
    ),
    (
        re.compile(r"^answers a letter of (\S+) from another address$"),
        r"membalas surat \1 dari alamat lain",
    ),
    (re.compile(r"^identity \(NIK or KTP\) received$"), "identitas (NIK/KTP) diterima"),
    (re.compile(r"^identity given on "), "identitas sudah diberikan pada "),
    (re.compile(r"^complainant replied$"), "pengadu membalas"),
    (
        re.compile(r"^ticket stays closed$"),
        "pengadu berterima kasih; tiket tetap selesai",
    ),
    (re.compile(r"^continues "), "lanjutan dari "),
    (re.compile(r"^continued in "), "dilanjutkan pada "),
    (re.compile(r"^approved by "), "disetujui oleh "),
    (re.compile(r"^final response sent by "), "tanggapan akhir dikirim oleh "),
    (re.compile(r"^verified by "), "diverifikasi oleh "),
    (re.compile(r"^step (\d+): "), r"tahap \1: "),
    (re.compile(r"^approver "), "penyetuju "),
    (re.compile(r"^ticket moved to "), "tiket dipindahkan ke "),
    (re.compile(r"(\d+) recipients\b"), r"\1 penerima"),
    (re.compile(r"\(no staff with role "), "(tidak ada staf dengan jabatan "),
)


# The actions whose details mailbot writes; the others hold staff's own words.
_WRITTEN_BY_MAILBOT = frozenset(
    {"created", "follow_up", "reopened", "linked", "draft_approved", "answered"}
    | {"identity", "thanked", "outsider_reply"}
    | {"verified", "escalation", "reminder", "draft_withdrawn"}
)


def history_detail(detail: str, action: str) -> str:
    """An event's detail as staff read it in a ticket's history."""
    if action == "status":
        old, arrow, new = detail.partition(" -> ")
        return f"{status_label(old)} -> {status_label(new)}" if arrow else detail
    if action not in _WRITTEN_BY_MAILBOT:
        return detail
    for pattern, replacement in _HISTORY_PHRASES:
        detail = pattern.sub(replacement, detail)
    return detail


def line_breaks(text: str) -> Markup:
    """Escape text for HTML and keep its line breaks as ``<br>``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return Markup("<br>\n").join(escape(line) for line in lines)


class Renderer:
    """Renders named templates; one environment, each template compiled once."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        timezone: str = "Asia/Jakarta",
        approval: bool = True,
    ) -> None:
        self.templates_dir = templates_dir
        self.timezone = timezone
        ZoneInfo(timezone)  # an unknown zone fails here, not at the first render

        # auto_reload off: a template is compiled on first use and kept.
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            undefined=jinja2.StrictUndefined,
            # Only the plain-text parts go unescaped; anything else is HTML-safe.
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2",),
                disabled_extensions=("txt.j2",),
                default_for_string=True,
                default=True,
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self._env.filters.update(
            wib=self._wib,
            durasi=format_duration,
            durasi_kerja=format_office_duration,
            jam_layanan=format_response_window,
            ukuran=format_size,
            baris=line_breaks,
            status_tiket=status_label,
            riwayat=history_detail,
        )
        # Every staff letter ends with the command list, made from its table;
        # #setuju and #revisi only where drafts are approved.
        self._env.globals["staff_commands"] = help_rows(approval=approval)

    def _wib(self, moment: datetime) -> str:
        return format_wib(moment, self.timezone)

    def render(self, name: str, fields: Mapping[str, object]) -> Rendered:
        """Render ``name`` (e.g. ``citizen/acknowledgement``) into text and HTML."""
        context = dict(fields)
        text = self._render_one(f"{name}.txt.j2", name, context)
        html = self._render_one(f"{name}.html.j2", name, context)
        log.debug("rendered template %s", name)
        return Rendered(text=text, html=html)

    def _render_one(self, filename: str, name: str, context: dict[str, object]) -> str:
        try:
            return self._env.get_template(filename).render(context)
        except jinja2.TemplateNotFound as exc:
            raise MessageError(f"template {name}: {exc.name} not found") from exc
        except jinja2.TemplateError as exc:
            raise MessageError(f"template {name} ({filename}): {exc}") from exc
        except ValueError as exc:
            # A filter refused a value, e.g. a naive datetime given to ``wib``.
            raise MessageError(f"template {name} ({filename}): {exc}") from exc
