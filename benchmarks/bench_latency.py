"""Latency: APPEND of a complaint to its acknowledgement at the SMTP server.

``mailbot run`` idles on a Dovecot account (poll interval one hour, so only the
IDLE watch can explain a fast answer) and sends through an aiosmtpd sink. Each
round APPENDs one complaint and waits for its acknowledgement.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import common
import smtpsink  # on the path common sets up

COMPLAINT = (
    "From: Warga {n} <warga{n}@example.com>\r\nTo: porong@sidoarjokab.go.id\r\n"
    "Subject: Sampah menumpuk di pasar {n}\r\nMessage-ID: <latency-{n}@example.com>\r\n"
    "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\n\r\n"
    "Sampah di pasar Porong menumpuk sejak seminggu. NIK 3515012305870001.\r\n"
)


def start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = common.mailbot_command(config, "run")
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=common.bench_env(), stdout=output, stderr=output
        )
    deadline = time.monotonic() + 30
    while b"watching with IDLE" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"mailbot run did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return process


def one_round(server: Any, user: Any, sink: Any, n: int) -> float:
    before = len(sink.messages)
    start = time.perf_counter()
    server.append(user, COMPLAINT.format(n=n).encode())
    while True:
        acks = [m for m in sink.messages[before:] if f"warga{n}@" in m.rcpt_tos[0]]
        if acks:
            return time.perf_counter() - start
        if time.perf_counter() - start > 60:
            raise SystemExit("no acknowledgement within 60 s")
        time.sleep(0.005)


def stop_run(process: subprocess.Popen[bytes]) -> float:
    start = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    if process.returncode != 0:
        raise SystemExit(f"mailbot run exited {process.returncode} on SIGTERM")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    common.heading("latency: APPEND of a complaint -> acknowledgement at SMTP")
    root = common.WORK / "latency"
    shutil.rmtree(root, ignore_errors=True)
    sink = smtpsink.SmtpSink()
    sink.start()
    with common.dovecot_server() as server:
        user = server.take_user()
        account = common.account_toml(server, user, "dinas")
        config = common.write_config(
            root / "mailbot.toml",
            root / "storage",
            account
            + "[intake]\npoll_interval_seconds = 3600\nsend_interval_seconds = 3600\n"
            + common.smtp_toml(sink),
        )
        process = start_run(config, root / "run.log")
        try:
            times = [one_round(server, user, sink, n) for n in range(args.rounds)]
        finally:
            stopped = stop_run(process)
    sink.stop()
    common.figure("median latency", statistics.median(times), "s")
    common.figure("worst latency", max(times), "s", f"{len(times)} rounds")
    common.figure("SIGTERM to exit", stopped, "s")
    common.ratio("median latency / 2 s target", statistics.median(times) / 2, "< 1")


if __name__ == "__main__":
    main()
