"""Several ``mailbot run`` workers on one PostgreSQL database, one killed midway.

Four worker processes share four Dovecot accounts holding 2,000 messages under
``make bench`` and 200 under ``make test``, one in ten a citizen's follow-up.
One worker is killed with SIGKILL once a quarter of the mail is in. Afterwards
every message is exactly one ticket or follow-up, references are unique and
gap-free, and every outgoing letter reached the SMTP sink; a letter may arrive
twice only if the killed worker died between the sink's acceptance and
recording it, and the test prints how many did.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clirun import SIGNING_KEY, Inbox, account_toml, mailbot, write_config
from conftest import fresh_postgres_database
from dovecot import DovecotServer, ImapUser
from servers import wait_until
from smtpsink import SmtpSink
from sqlalchemy import Engine, create_engine, func, select

from mailbot.models import InboundMail, InboundStatus, OutboxItem, OutboxStatus, Ticket
from mailbot.references import parse_reference

pytestmark = pytest.mark.postgres

# `make test` runs 200 to stay quick; `make bench` runs the full 2,000
# (benchmarks/bench_workers.py sets this variable).
MESSAGES = int(os.environ.get("MAILBOT_WORKERS_MESSAGES", "200"))
WORKERS = 4
ACCOUNTS = 4
# Subject, body, and the unit the default rules route it to.
TOPICS = [
    ("Lampu PJU mati", "Lampu penerangan jalan umum di gang kami mati.", "ekbang"),
    ("Sampah menumpuk", "Sampah di pasar menumpuk dan tidak diangkut.", "ekbang"),
    ("e-KTP belum jadi", "e-KTP saya belum dicetak sejak tiga bulan.", "pelayanan"),
    ("Jalan berlubang", "Jalan desa berlubang besar dan membahayakan.", "ekbang"),
]


def _complaint(account: int, n: int) -> bytes:
    subject, body, _ = TOPICS[n % len(TOPICS)]
    return (
        f"From: Warga {account}-{n} <warga{account}x{n}@example.com>\r\n"
        f"To: porong@sidoarjokab.go.id\r\nSubject: {subject} {account}-{n}\r\n"
        f"Message-ID: <c{account}x{n}@example.com>\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\n\r\n"
        f"{body}\r\nNIK 3515012305870001.\r\n"
    ).encode()


def _follow_up(account: int, n: int, parent: int) -> bytes:
    return (
        f"From: Warga {account}-{parent} <warga{account}x{parent}@example.com>\r\n"
        f"To: porong@sidoarjokab.go.id\r\nSubject: Re: tambahan {account}-{n}\r\n"
        f"Message-ID: <f{account}x{n}@example.com>\r\n"
        f"In-Reply-To: <c{account}x{parent}@example.com>\r\n"
        "Date: Mon, 05 Jan 2026 10:00:00 +0700\r\n\r\n"
        "Mohon segera ditindaklanjuti, terima kasih.\r\n"
    ).encode()


def _is_follow_up(n: int) -> bool:
    # Every tenth message follows up the complaint five messages before it.
    return n % 10 == 9


def _mailbox(account: int, count: int) -> list[bytes]:
    return [
        _follow_up(account, n, n - 5) if _is_follow_up(n) else _complaint(account, n)
        for n in range(count)
    ]


def _ekbang_letters(per_account: int) -> tuple[int, int]:
    """Ekbang's tickets and follow-ups: each also tells its staff member."""
    ekbang = [n for n in range(per_account) if TOPICS[n % len(TOPICS)][2] == "ekbang"]
    tickets = sum(1 for n in ekbang if not _is_follow_up(n))
    follow_ups = sum(
        1 for n in range(per_account) if _is_follow_up(n) and n - 5 in ekbang
    )
    return tickets * ACCOUNTS, follow_ups * ACCOUNTS


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    program = Path(sys.executable).with_name("mailbot")
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    with log.open("wb") as output:
        return subprocess.Popen(
            [str(program), "--config", str(config), "run"],
            env=env,
            stdout=output,
            stderr=output,
        )


def _count(engine: Engine, *where: object) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).where(*where)) or 0)


def _settled(engine: Engine, expected: int) -> bool:
    inbound = _count(engine, InboundMail.id.is_not(None))
    waiting = _count(engine, OutboxItem.status != OutboxStatus.SENT)
    return inbound == expected and waiting == 0


def test_four_workers_one_killed_make_every_ticket_once(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    smtp_sink: SmtpSink,
    postgres_url: str,
) -> None:
    per_account = MESSAGES // ACCOUNTS
    inboxes = [
        Inbox(f"kotak{i}", imap_users(), f"kotak{i}@porong.example.go.id")
        for i in range(ACCOUNTS)
    ]
    for i, inbox in enumerate(inboxes):
        dovecot.seed(inbox.user, _mailbox(i, per_account))
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, inbox, batch_size=50) for inbox in inboxes],
        smtp=smtp_sink,
        extra="[intake]\npoll_interval_seconds = 1\nsend_interval_seconds = 1\n",
        database_url=postgres_url,
    )
    mailbot(config, "upgrade")
    engine = create_engine(postgres_url)
    start = time.monotonic()
    workers = [_start(config, tmp_path / f"worker{n}.log") for n in range(WORKERS)]
    try:
        _kill_one_midway(engine, workers)
    finally:
        _stop(workers)
    elapsed = time.monotonic() - start

    with engine.connect() as connection:
        statuses = Counter(connection.scalars(select(InboundMail.status)).all())
        references = connection.scalars(select(Ticket.reference)).all()
        outgoing = connection.execute(
            select(OutboxItem.message_id, OutboxItem.kind, OutboxItem.status)
        ).all()
    engine.dispose()
    delivered = Counter(
        _message_id(m.raw) for m in smtp_sink.messages if _message_id(m.raw)
    )
    twice = sum(1 for count in delivered.values() if count > 1)
    kinds = Counter(row.kind for row in outgoing)
    print(
        f"\n{MESSAGES} messages, {WORKERS} workers (one killed): {elapsed:.1f} s; "
        f"{len(outgoing)} letters ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
        f"{twice} delivered twice"
    )

    complaints = MESSAGES - MESSAGES // 10
    assert statuses == {
        InboundStatus.TICKET: complaints,
        InboundStatus.FOLLOW_UP: MESSAGES // 10,
    }
    sequences = sorted(parse_reference(r, "PRG").seq for r in references)
    assert sequences == list(range(1, complaints + 1))
    # No mailbox alert: the account of the killed worker was taken over long
    # before it could be called stale.
    ekbang_tickets, ekbang_follow_ups = _ekbang_letters(per_account)
    assert kinds == {
        "acknowledgement": complaints,
        "unit_notification": complaints + ekbang_tickets,
        "follow_up_notification": MESSAGES // 10 + ekbang_follow_ups,
    }
    assert {row.status for row in outgoing} == {OutboxStatus.SENT}
    assert set(delivered) == {row.message_id for row in outgoing}
    assert twice <= 1
    assert [w.returncode for w in workers] == [-signal.SIGKILL, 0, 0, 0]


def _kill_one_midway(engine: Engine, workers: list[subprocess.Popen[bytes]]) -> None:
    wait_until(
        lambda: _count(engine, InboundMail.id.is_not(None)) >= MESSAGES // 4,
        120.0,
        "a quarter of the mail",
    )
    workers[0].send_signal(signal.SIGKILL)
    # Reaped, as its service manager would: a zombie still looks alive.
    workers[0].wait(timeout=30)
    wait_until(lambda: _settled(engine, MESSAGES), 600.0, "all mail handled")


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
        if not line:
            break
    return ""


def test_workers_started_together_on_a_new_database_migrate_it_once(
    tmp_path: Path, postgres_url: str
) -> None:
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        database_url=postgres_url,
    )
    program = Path(sys.executable).with_name("mailbot")
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    command = [str(program), "--config", str(config), "tickets", "list", "--json"]

    started = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in started]

    assert [p.returncode for p in started] == [0] * WORKERS
    assert outputs == ["[]\n"] * WORKERS
