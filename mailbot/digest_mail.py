"""The digest as mail: fields for its templates, rendering and queueing.

Reads a computed ``Digest`` and turns it into the plain fields the
``staff/digest`` templates use; queues it once per day and recipient.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from mailbot.compose import Letter
from mailbot.config import Settings
from mailbot.digest import Digest, OverdueTicket, UnitLoad, format_day
from mailbot.escalation import CHAIN
from mailbot.models import OutboxItem
from mailbot.notices import queue_notice
from mailbot.outbox import Sender
from mailbot.policy import POST_TITLES
from mailbot.rendering import Rendered, Renderer, format_response_window

log = logging.getLogger(__name__)

BAR_CELLS = 100


def percent(part: int, whole: int) -> str:
    """A share in Indonesian notation, ``66,7%``; a dash when nothing to share."""
    if whole == 0:
        return "-"
    value = f"{100 * part / whole:.1f}".replace(".", ",").removesuffix(",0")
    return f"{value}%"


def _promise(settings: Settings) -> str:
    # The label must say what "on time" was measured against.
    hours = settings.office.response_hours
    if settings.sla.mode == "working_hours":
        return f"{hours} jam kerja"
    return format_response_window(hours)


def digest_fields(digest: Digest, settings: Settings) -> dict[str, Any]:
    """The template fields of a digest: plain values only."""
    figures, backlog = digest.figures, digest.backlog
    return {
        "office": {"name": settings.office.name},
        "day": format_day(digest.day),
        "generated_at": digest.generated_at,
        "figures": figures.__dict__,
        "on_time_share": percent(figures.answered_on_time, figures.answered),
        "promise": _promise(settings),
        "backlog": {
            "open": backlog.open,
            "overdue": backlog.overdue,
            "waiting_identity": backlog.waiting_identity,
        },
        "units": _units(backlog.units),
        "overdue": [_overdue(row, settings) for row in backlog.overdue_tickets],
        "overdue_more": backlog.overdue - len(backlog.overdue_tickets),
        "undelivered": [row.__dict__ for row in digest.undelivered],
        "undelivered_more": digest.undelivered_total - len(digest.undelivered),
        "accounts": [row.__dict__ for row in digest.accounts],
    }


def _units(units: tuple[UnitLoad, ...]) -> list[dict[str, Any]]:
    most = max((u.open for u in units), default=0)
    rows = []
    for unit in units:
        # A bar of table cells: Outlook ignores widths on divs.
        bar = round(BAR_CELLS * unit.open / most) if most else 0
        rows.append({**unit.__dict__, "bar": bar, "rest": BAR_CELLS - bar})
    return rows


def _overdue(row: OverdueTicket, settings: Settings) -> dict[str, Any]:
    step = row.escalation_step
    title = POST_TITLES[CHAIN[step - 1]] if 0 < step <= len(CHAIN) else "-"
    return {
        **row.__dict__,
        "unit_name": settings.unit(row.unit).name,
        "step_title": title,
    }


def render_digest(renderer: Renderer, digest: Digest, settings: Settings) -> Rendered:
    """The text and HTML parts of the digest."""
    return renderer.render("staff/digest", digest_fields(digest, settings))


def digest_subject(day: date, settings: Settings) -> str:
    """The subject line of the digest of ``day``."""
    office = settings.office.name
    return f"Ringkasan harian Layanan Pengaduan {office}: {format_day(day)}"


def queue_digest(
    session: Session,
    rendered: Rendered,
    digest: Digest,
    settings: Settings,
    *,
    to: tuple[str, ...],
    now: datetime,
) -> list[OutboxItem]:
    """Queue the digest for each recipient unless it is queued already."""
    letter = Letter("digest", to, digest_subject(digest.day, settings), rendered)
    items = queue_notice(
        session,
        letter,
        sender=Sender.of_office(settings),
        now=now,
        key=f"digest.{digest.day:%Y%m%d}",
    )
    log.info("digest %s: %d queued", digest.day, len(items))
    return items
