"""Idle poll: a poll that finds nothing new, on a folder of 10 and of 100,000.

Both folders are already handled (the account's stored state points at the
last UID), so the poll does nothing but ask. Measured twice: ``mailbot poll
--once`` end to end as a process, and the Poller.poll step alone in-process.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

import common

from mailbot.app import App
from mailbot.config import load_settings
from mailbot.models import MailboxState

SMALL_MESSAGE = (
    "From: Warga <warga{n}@example.com>\r\nTo: pengaduan@porong.example.go.id\r\n"
    "Subject: Lampu jalan mati {n}\r\nMessage-ID: <idle-{n}@example.com>\r\n"
    "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\n\r\nLampu PJU di RT 0{n} mati.\r\n"
)


def seed(server: Any, user: Any, count: int) -> int:
    messages = [SMALL_MESSAGE.format(n=n).encode() for n in range(count)]
    with common.stopwatch() as elapsed:
        uids = server.seed(user, messages)
    common.figure(f"seed {count:,} messages (MULTIAPPEND)", elapsed[0], "s")
    return max(uids)


def handled_state(config: Path, name: str, server: Any, user: Any, last: int) -> None:
    app = App.build(load_settings(config))
    with server.session(user) as client:
        uidvalidity = client.select_folder("INBOX", readonly=True)[b"UIDVALIDITY"]
    with app.sessions.begin() as session:
        session.add(
            MailboxState(
                account=name,
                folder="INBOX",
                uidvalidity=int(uidvalidity),
                last_uid=last,
            )
        )


def cli_poll(config: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        command = common.mailbot_command(config, "poll", "--once")
        with common.stopwatch() as elapsed:
            subprocess.run(
                command, env=common.bench_env(), check=True, capture_output=True
            )
        times.append(elapsed[0])
    return statistics.median(times)


def step_poll(config: Path, runs: int) -> float:
    app = App.build(load_settings(config))
    poller = app.poller()
    account = app.settings.accounts[0]
    times = []
    for _ in range(runs):
        with common.stopwatch() as elapsed:
            report = poller.poll(account)
        assert report.fetched == 0 and not report.error, report
        times.append(elapsed[0])
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    common.heading(
        f"idle poll: folder of 10 vs {args.large:,} already-handled messages"
    )
    root = common.WORK / "poll"
    results: dict[int, tuple[float, float]] = {}
    with common.dovecot_server() as server:
        for size in (10, args.large):
            user = server.take_user()
            last = seed(server, user, size)
            name = f"size{size}"
            # A fresh data folder: an earlier run's state would not match
            # this server's folder.
            shutil.rmtree(root / name, ignore_errors=True)
            account = common.account_toml(server, user, name)
            config = common.write_config(
                root / name / "mailbot.toml", root / name / "storage", account
            )
            handled_state(config, name, server, user, last)
            results[size] = (
                cli_poll(config, args.runs // 4),
                step_poll(config, args.runs),
            )

    for size, (cli_s, step_s) in results.items():
        common.figure(f"mailbot poll --once, {size:,} messages", cli_s * 1000, "ms")
        common.figure(f"Poller.poll step, {size:,} messages", step_s * 1000, "ms")
    small, large = results[10], results[args.large]
    common.ratio("poll --once large / small", large[0] / small[0], "< 1.5")
    common.ratio("Poller.poll large / small", large[1] / small[1], "< 1.5")


if __name__ == "__main__":
    main()
