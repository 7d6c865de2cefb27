"""How long the daily digest takes over 100,000 tickets, on SQLite and PostgreSQL.

Seeds a scratch database of each kind with the same bulk inserts (tickets spread
over a year, a share of them still open and overdue, events, automatic mail and
failed acknowledgements), then times computing and rendering the digest of one
day, three times each; the ratio compares the two databases in the same run.

    .venv/bin/python benchmarks/bench_digest.py [TICKETS]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import common
from sqlalchemy import insert

from mailbot.app import App
from mailbot.config import Settings, parse_settings
from mailbot.digest import compute_digest, day_window
from mailbot.digest_mail import render_digest
from mailbot.models import (
    Event,
    InboundMail,
    InboundStatus,
    OutboxItem,
    OutboxStatus,
    Ticket,
    TicketStatus,
)

NOW = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
DAY = datetime(2026, 12, 2).date()
STATES = [TicketStatus.ANSWERED] * 80 + [TicketStatus.REJECTED] * 5
STATES += [TicketStatus.RECEIVED] * 10 + [TicketStatus.IN_PROGRESS] * 5


def ticket_rows(
    count: int, units: list[str], rng: random.Random
) -> list[dict[str, object]]:
    rows = []
    for n in range(1, count + 1):
        received = NOW - timedelta(minutes=rng.randrange(365 * 24 * 60))
        status = rng.choice(STATES)
        answered = None
        if status == TicketStatus.ANSWERED:
            answered = min(NOW, received + timedelta(minutes=rng.randrange(3000)))
        rows.append(
            {
                "id": n,
                "reference": f"PRG-2026-{n:06d}-0",
                "status": status,
                "unit_code": rng.choice(units),
                "matched_keywords": [],
                "complainant_email": f"warga{n}@example.com",
                "complainant_name": f"Warga {n}",
                "subject": f"Pengaduan nomor {n}",
                "account": "dinas",
                "inbox_address": "porong@sidoarjokab.go.id",
                "identity_provided": n % 7 != 0,
                "received_at": received,
                "due_at": received + timedelta(hours=24),
                "answered_at": answered,
                "updated_at": received,
                "escalation_step": rng.randrange(4),
            }
        )
    return rows


def seed(app: App, count: int) -> None:
    rng = random.Random(4)
    units = [u.code for u in app.settings.units]
    tickets = ticket_rows(count, units, rng)
    events = [
        {
            "ticket_id": row["id"],
            "at": row["received_at"] + timedelta(hours=1),
            "actor": "mailbot",
            "action": "status",
            "detail": f"received -> {row['status']}",
        }
        for row in tickets
    ]
    inbound = [
        {
            "dedupe_key": f"auto-{n}",
            "sha256": "0" * 64,
            "raw_path": f"{n}.eml",
            "size": 1000,
            "source": "dinas:INBOX:1",
            "received_at": NOW - timedelta(minutes=rng.randrange(365 * 24 * 60)),
            "status": InboundStatus.AUTOMATIC,
            "reason": "auto-replied",
        }
        for n in range(count // 10)
    ]
    outbox = [
        {
            "ticket_id": n,
            "kind": "acknowledgement",
            "message_id": f"ack-{n}@x",
            "envelope_from": "porong@x",
            "recipients": ["w@example.com"],
            "raw": b"",
            "status": OutboxStatus.FAILED,
            "attempts": 8,
            "next_attempt_at": NOW,
            "created_at": NOW,
            "last_reply": "550 no such user",
        }
        for n in range(1, count + 1, 997)
    ]
    with app.sessions.begin() as session:
        session.execute(insert(Ticket), tickets)
        session.execute(insert(Event), events)
        session.execute(insert(InboundMail), inbound)
        session.execute(insert(OutboxItem), outbox)


def settings(data_dir: Path, database_url: str = "") -> Settings:
    staff = '[[staff]]\nemail = "camat@x.go.id"\nname = "Camat"\nrole = "camat"\n'
    url = f'database_url = "{database_url}"\n' if database_url else ""
    text = f'[storage]\ndata_dir = "{data_dir}"\n{url}{staff}'
    return parse_settings(text, "bench")


def measure(app: App, count: int) -> float:
    """Seed, then print three timed digests; returns the best compute time."""
    started = time.perf_counter()
    seed(app, count)
    seeded = time.perf_counter() - started

    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with app.sessions() as session:
            digest = compute_digest(session, app.settings, DAY, NOW)
        computed = time.perf_counter() - started
        rendered = render_digest(app.renderer, digest, app.settings)
        timings.append((computed, time.perf_counter() - started))

    start, end = day_window(DAY, "Asia/Jakarta")
    print(f"  tickets: {count:,}; seeded in {seeded:.1f} s")
    print(f"  day {DAY} ({start:%H:%M}-{end:%H:%M} UTC): {digest.figures}")
    print(
        f"  backlog: {digest.backlog.open:,} open, {digest.backlog.overdue:,} overdue"
    )
    print(f"  html: {len(rendered.html):,} characters, text: {len(rendered.text):,}")
    for n, (computed, total) in enumerate(timings, 1):
        ms = computed * 1000, total * 1000
        print(f"  run {n}: compute {ms[0]:.0f} ms, compute and render {ms[1]:.0f} ms")
    return min(computed for computed, _ in timings)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    common.heading(f"digest over {count:,} tickets: SQLite")
    with tempfile.TemporaryDirectory() as scratch:
        app = App.build(settings(Path(scratch)))
        on_sqlite = measure(app, count)
        app.sessions.kw["bind"].dispose()

    common.heading(f"digest over {count:,} tickets: PostgreSQL")
    with (
        tempfile.TemporaryDirectory() as scratch,
        common.postgres_database("mailbot_bench_digest") as url,
    ):
        app = App.build(settings(Path(scratch), url))
        on_postgres = measure(app, count)
        app.sessions.kw["bind"].dispose()

    common.figure("best compute, SQLite", on_sqlite * 1000, "ms")
    common.figure("best compute, PostgreSQL", on_postgres * 1000, "ms")
    common.ratio("PostgreSQL / SQLite compute time", on_postgres / on_sqlite)


if __name__ == "__main__":
    main()
