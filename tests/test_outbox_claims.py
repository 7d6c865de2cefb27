"""Claims: a letter is taken by one sender, and a sender that stops holds it
only as long as its claim, or until its process is gone."""

from __future__ import annotations

import email
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clirun import SIGNING_KEY, mailbot, write_config
from seeding import FixedClock, make_settings
from smtpsink import SmtpSink
from sqlalchemy import select, update

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.errors import CommandError
from mailbot.inbound import Origin
from mailbot.leases import holder_name
from mailbot.models import OutboxItem
from mailbot.outbox import CLAIM_SECONDS, deliver_due, retry
from mailbot.references import Reference

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "inbox"
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
SMTP = SmtpConfig(host="localhost", port=25, security="none")
COMPLAINT = (
    b"From: Budi <budi@example.com>\nTo: porong@sidoarjokab.go.id\n"
    b"Subject: Lampu jalan mati\nMessage-ID: <lampu-1@example.com>\n\n"
    b"Lampu PJU di depan rumah saya mati.\n"
)


def test_two_senders_on_one_sqlite_send_each_letter_once(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # Trial 29: SKIP LOCKED means nothing to SQLite; a `send` beside `run`
    # sent 23 of 29 letters twice.
    config = write_config(
        tmp_path / "mailbot.toml", data_dir=tmp_path / "storage", smtp=smtp_sink
    )
    mailbot(config, "import", str(EXAMPLES))
    queued = len(json.loads(mailbot(config, "outbox", "list", "--json").stdout))
    command = [str(Path(sys.executable).with_name("mailbot")), "--config", str(config)]
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    senders = [
        subprocess.Popen([*command, "send"], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    said = [sender.communicate(timeout=120)[0] for sender in senders]

    ids = [_message_id(message.raw) for message in smtp_sink.messages]
    sent = sum(int(line.split()[1].rstrip(",")) for line in said)
    assert queued == 34
    assert (len(ids), len(set(ids)), sent) == (34, 34, 34)


def _message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"])


class Accepting:
    """A server that takes every letter; ``stop_after`` ends the process
    (SystemExit) once it has, as a crash between acceptance and the record."""

    def __init__(self, stop_after: bool = False) -> None:
        self.sent: list[str] = []
        self.stop_after = stop_after

    def deliver(self, sender: str, recipients: list[str], raw: bytes) -> str:
        self.sent.append(recipients[0])
        if self.stop_after:
            raise SystemExit("stopped after the server accepted")
        return "250 accepted"

    def close(self) -> None:
        pass


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv("MAILBOT_TEST_SIGNING_KEY", SIGNING_KEY)
    built = App.build(make_settings(tmp_path), FixedClock(NOW))
    built.intake.receive(COMPLAINT, Origin("import", "", "test"))
    return built


def test_a_letter_whose_record_failed_waits_out_its_claim(app: App) -> None:
    # Trial 29: the server took a letter, the commit failed (locked, disk
    # full), and the next run sent it again, and again.
    crashing = Accepting(stop_after=True)
    with pytest.raises(SystemExit):
        deliver_due(app.sessions, crashing, SMTP, FixedClock(NOW))

    others = Accepting()
    deliver_due(app.sessions, others, SMTP, FixedClock(NOW + timedelta(seconds=60)))
    lapsed = Accepting()
    later = FixedClock(NOW + timedelta(seconds=CLAIM_SECONDS + 1))
    deliver_due(app.sessions, lapsed, SMTP, later)

    # The acknowledgement went out before the crash, the unit's notices after
    # it, and the acknowledgement once more only when its claim had lapsed.
    assert crashing.sent == ["budi@example.com"]
    assert len(others.sent) == 2
    assert "budi@example.com" not in others.sent
    assert lapsed.sent == ["budi@example.com"]


def test_a_claim_of_a_process_that_is_gone_is_taken_over_at_once(app: App) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with app.sessions.begin() as session:
        session.execute(
            update(OutboxItem).values(
                next_attempt_at=NOW + timedelta(seconds=CLAIM_SECONDS),
                last_reply=f"sending by {holder_name().rpartition(':')[0]}:{gone}",
            )
        )

    accepting = Accepting()
    report = deliver_due(app.sessions, accepting, SMTP, FixedClock(NOW))

    assert report.sent == 3
    with app.sessions() as session:
        replies = set(session.scalars(select(OutboxItem.last_reply)))
    assert replies == {"250 accepted"}


def test_sweeps_run_at_once_on_sqlite_escalate_each_ticket_once(
    tmp_path: Path,
) -> None:
    # Trial 29: a `sweep` by hand beside `run` sent 1,341 escalations for 716
    # overdue tickets: SQLite ignores FOR UPDATE.
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(EXAMPLES))
    database = tmp_path / "storage" / "mailbot.sqlite3"
    with sqlite3.connect(database) as connection:
        _copy_tickets(connection, 300)
        connection.execute(
            "UPDATE tickets SET received_at = datetime('now', '-25 hours'), "
            "due_at = datetime('now', '-1 hours')"
        )
    command = [str(Path(sys.executable).with_name("mailbot")), "--config", str(config)]
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    sweeps = [
        subprocess.Popen([*command, "sweep"], stdout=subprocess.PIPE, env=env)
        for _ in range(3)
    ]
    for sweep in sweeps:
        sweep.communicate(timeout=120)

    with sqlite3.connect(database) as connection:
        steps = connection.execute(
            "SELECT ticket_id, count(*) FROM events WHERE action = 'escalation' "
            "GROUP BY ticket_id"
        ).fetchall()
        tickets = connection.execute("SELECT count(*) FROM tickets").fetchone()[0]
    assert tickets == 314
    assert sorted(count for _, count in steps) == [1] * 314


def _copy_tickets(connection: sqlite3.Connection, copies: int) -> None:
    # Enough overdue tickets that the sweeps overlap.
    connection.row_factory = sqlite3.Row
    row = dict(connection.execute("SELECT * FROM tickets LIMIT 1").fetchone())
    del row["id"]
    for n in range(copies):
        row["reference"] = str(Reference("PRG", 2025, n + 1))
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        connection.execute(
            f"INSERT INTO tickets ({names}) VALUES ({marks})", list(row.values())
        )


def test_retry_by_hand_leaves_a_letter_another_sender_is_sending(app: App) -> None:
    # Trial 32: "outbox retry" on a letter listed as "sending by ..." made it
    # due at once, and a second sender delivered it beside the first.
    holder = f"sending by {holder_name()}"
    with app.sessions.begin() as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == 1)
            .values(
                next_attempt_at=NOW + timedelta(seconds=CLAIM_SECONDS),
                last_reply=holder,
            )
        )

    with app.sessions.begin() as session, pytest.raises(CommandError) as refused:
        retry(session, 1, NOW + timedelta(seconds=10))
    with app.sessions.begin() as session:
        lapsed = retry(session, 1, NOW + timedelta(seconds=CLAIM_SECONDS))
        due, said = lapsed.next_attempt_at, lapsed.last_reply
        # Trial 34: a waiting letter retried by hand went to the back.
        waiting = retry(session, 2, NOW + timedelta(seconds=60)).next_attempt_at

    assert str(refused.value) == (
        f"outbox message 1 is being sent ({holder}); if it is still queued in 5 "
        "min, its sender is gone and it goes again by itself"
    )
    assert due == NOW + timedelta(seconds=CLAIM_SECONDS)
    assert said == "queued again by hand"
    assert waiting == NOW


def test_a_send_run_stops_between_letters_when_it_is_interrupted(app: App) -> None:
    # Trial 33: a run of 270 letters to a slow server kept new mail waiting
    # 6.5 minutes and SIGTERM 43 s; it now stops after the letter in hand.
    asked: list[int] = []
    accepting = Accepting()

    def interrupted() -> bool:
        asked.append(len(accepting.sent))
        return len(accepting.sent) == 2

    first = deliver_due(
        app.sessions, accepting, SMTP, FixedClock(NOW), interrupted=interrupted
    )
    rest = deliver_due(app.sessions, accepting, SMTP, FixedClock(NOW))

    assert (first.sent, rest.sent) == (2, 1)
    assert asked == [1, 2]
