"""Two days of one ticket on the real clock, moved by time-machine.

The service's own jobs (sweep, digest) read ``SystemClock``; time-machine moves
that clock through the reminder, the three escalation steps and the next
morning's digest, as ``mailbot run`` would live them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from seeding import add_ticket, make_settings
from sqlalchemy import select

from mailbot.app import App
from mailbot.models import OutboxItem
from mailbot.service import Service
from mailbot.transport import FileTransport

WIB = ZoneInfo("Asia/Jakarta")
RECEIVED = datetime(2026, 12, 1, 8, 0, tzinfo=WIB)


def _sent(app: App) -> list[tuple[str, str]]:
    with app.sessions() as session:
        rows = session.execute(
            select(OutboxItem.kind, OutboxItem.recipients, OutboxItem.status)
            .where(OutboxItem.kind != "unit_notification")
            .order_by(OutboxItem.id)
        )
        return [(kind, to[0]) for kind, to, status in rows if status == "sent"]


def test_reminder_escalation_chain_and_digest_on_the_moving_clock(
    tmp_path: Path,
) -> None:
    with time_machine.travel(RECEIVED, tick=False) as clock:
        app = App.build(make_settings(tmp_path))
        service = Service(app, FileTransport(tmp_path / "outbox"))
        with app.sessions.begin() as session:
            add_ticket(session, app.settings, RECEIVED)
        steps = []
        for hours in (17.9, 18, 23.9, 24, 27.9, 28, 32, 40):
            clock.move_to(RECEIVED + timedelta(hours=hours))
            service.sweep()
            steps.append(len(_sent(app)))

        clock.move_to(datetime(2026, 12, 2, 6, 59, tzinfo=WIB))
        service.digest_if_due()
        before_seven = len(_sent(app))
        clock.move_to(datetime(2026, 12, 2, 7, 0, tzinfo=WIB))
        service.digest_if_due()
        service.digest_if_due()

    assert steps == [0, 2, 2, 3, 3, 4, 5, 5]
    assert before_seven == 5
    assert _sent(app) == [
        ("sla_reminder", "ekbang.porong@example.go.id"),
        ("sla_reminder", "ekbang.staf@porong.example.go.id"),
        ("sla_escalation", "kasubag@porong.example.go.id"),
        ("sla_escalation", "sekcam@porong.example.go.id"),
        ("sla_escalation", "camat@porong.example.go.id"),
        ("digest", "camat@porong.example.go.id"),
    ]
