"""IMAP IDLE watching: ``mailbot run`` answers a complaint without waiting for its
poll interval, and the Watcher wakes the scheduler when mail arrives."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from clirun import SIGNING_KEY, Inbox, account_toml, write_config
from dovecot import DovecotServer, ImapUser
from servers import wait_until
from smtpsink import SmtpSink

from mailbot.imap import Mailbox
from mailbot.watch import Watcher

COMPLAINT = (
    b"From: Budi Santoso <budi.santoso@example.com>\r\n"
    b"To: porong@sidoarjokab.go.id\r\n"
    b"Subject: Sampah menumpuk di pasar Porong\r\n"
    b"Message-ID: <watch-1@example.com>\r\n"
    b"Date: Mon, 05 Jan 2026 09:00:00 +0700\r\n\r\n"
    b"Sampah di pasar menumpuk sejak seminggu.\r\n"
)
HOUR = "[intake]\npoll_interval_seconds = 3600\nsend_interval_seconds = 3600\n"


def _start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    program = Path(sys.executable).with_name("mailbot")
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(program), "--config", str(config), "run"],
            env=env,
            stdout=output,
            stderr=output,
        )
    wait_until(
        lambda: b"watching with IDLE" in log.read_bytes(), 30.0, "the IDLE watch"
    )
    return process


def test_run_acknowledges_a_complaint_between_scheduled_polls(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, inbox)],
        smtp=smtp_sink,
        extra=HOUR,
    )
    process = _start_run(config, tmp_path / "run.log")

    dovecot.append(imap_user, COMPLAINT)
    received = smtp_sink.wait_for(3, timeout=30.0)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)

    assert sorted(m.rcpt_tos for m in received) == [
        ("budi.santoso@example.com",),
        ("ekbang.porong@example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
    ]
    assert process.returncode == 0


def _watching(
    dovecot: DovecotServer,
    user: ImapUser,
    caplog: pytest.LogCaptureFixture,
    **options: float,
) -> tuple[Watcher, threading.Event]:
    caplog.set_level(logging.INFO, logger="mailbot.watch")
    wake = threading.Event()
    watcher = Watcher(Mailbox, wake, idle_seconds=20.0, **options)
    watcher.start([dovecot.account(user, password_env=user.password_env)])
    wait_until(lambda: "porong: watching with IDLE" in caplog.text, 10.0, "the watch")
    return watcher, wake


def test_watcher_wakes_on_new_mail(
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = imap_users()
    watcher, wake = _watching(dovecot, user, caplog)
    # Starting to watch wakes the poll once, for mail that came while down.
    woke_at_start = wake.is_set()
    wake.clear()

    dovecot.append(user, COMPLAINT)
    woke = wake.wait(20.0)
    watcher.stop()
    for thread in watcher.threads:
        thread.join(timeout=10.0)

    assert (woke_at_start, woke) == (True, True)
    assert [(t.name, t.is_alive()) for t in watcher.threads] == [
        ("watch-porong", False)
    ]


def test_the_watch_is_back_within_seconds_of_the_server(
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher, wake = _watching(dovecot, imap_users(), caplog, first_retry_seconds=0.5)

    with dovecot.stopped():
        wait_until(lambda: "watch connection failed" in caplog.text, 20.0, "a failure")
        wake.clear()
    woke = wake.wait(10.0)
    watcher.stop()
    for thread in watcher.threads:
        thread.join(timeout=10.0)

    watching = [m for m in caplog.messages if m == "account porong: watching with IDLE"]
    retries = [m.split(": ")[1] for m in caplog.messages if "retrying in" in m]
    assert woke is True
    assert len(watching) == 2
    # The first retry comes after 0.5 s (then 1, 2, 4 ... up to 60 s).
    assert retries[0] == "watch connection failed, retrying in 0.5 s"
