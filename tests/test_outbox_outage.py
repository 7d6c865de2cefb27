"""The outbox when the SMTP server is down or refusing: backoff, failed, retry."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from clirun import mailbot, write_config
from servers import LOOPBACK
from smtpsink import SmtpSink

from mailbot.config import SmtpConfig
from mailbot.outbox import backoff

COMPLAINT = (
    b"From: Budi <budi@example.com>\nTo: porong@sidoarjokab.go.id\n"
    b"Subject: Lampu jalan mati\nDate: Wed, 02 Dec 2026 08:00:00 +0700\n"
    b"Message-ID: <lampu-1@example.com>\n"
    b'Content-Type: text/plain; charset="utf-8"\n\n'
    b"Lampu PJU di depan rumah saya mati.\n"
)


def test_backoff_doubles_up_to_the_cap() -> None:
    smtp = SmtpConfig(
        host="localhost",
        port=25,
        security="none",
        retry_base_seconds=60,
        retry_cap_seconds=600,
    )

    waits = [backoff(n, smtp).total_seconds() for n in range(1, 8)]

    assert waits == [60, 120, 240, 480, 600, 600, 600]


def _outbox(config: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        mailbot(config, "outbox", "list", "--json", *args).stdout
    )
    return rows


def _wait_until_due(rows: list[dict[str, Any]]) -> None:
    due = max(datetime.fromisoformat(r["next_attempt_at"]) for r in rows)
    time.sleep(max(0.0, (due - datetime.now(due.tzinfo)).total_seconds()) + 0.05)


def _summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["kind"], r["status"], r["attempts"]) for r in rows]


def test_smtp_down_then_failed_then_retried_by_hand(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path / "mailbot.toml", data_dir=tmp_path / "storage", smtp=smtp_sink
    )
    mail = tmp_path / "lampu.eml"
    mail.write_bytes(COMPLAINT)
    mailbot(config, "import", str(mail))
    refused = f"cannot use SMTP server {LOOPBACK}:{smtp_sink.port}: [Errno 111]"

    smtp_sink.stop()
    first = mailbot(config, "send").stdout.strip()
    after_first = _outbox(config)
    _wait_until_due(after_first)
    second = mailbot(config, "send").stdout.strip()
    after_second = _outbox(config)
    _wait_until_due(after_second)
    third = mailbot(config, "send").stdout.strip()
    failed = _outbox(config, "--status", "failed")
    smtp_sink.start()
    retried = [
        mailbot(config, "outbox", "retry", str(r["id"])).stdout.strip() for r in failed
    ]
    resent_run = mailbot(config, "-v", "send")
    resent = resent_run.stdout.strip()

    assert [first, second, third] == [
        "sent 0, deferred 3, failed 0",
        "sent 0, deferred 3, failed 0",
        "sent 0, deferred 0, failed 3",
    ]
    assert _summary(after_first) == [
        ("acknowledgement", "queued", 1),
        ("unit_notification", "queued", 1),
        ("unit_notification", "queued", 1),
    ]
    assert all(r["last_reply"].startswith(refused) for r in after_first)
    # Waits double: 1 s after the first attempt, 2 s after the second.
    gaps = [
        datetime.fromisoformat(b["next_attempt_at"])
        - datetime.fromisoformat(a["next_attempt_at"])
        for a, b in zip(after_first, after_second, strict=True)
    ]
    assert all(timedelta(seconds=2) <= gap < timedelta(seconds=60) for gap in gaps)
    assert _summary(failed) == [
        ("acknowledgement", "failed", 3),
        ("unit_notification", "failed", 3),
        ("unit_notification", "failed", 3),
    ]
    assert [r["reference"] for r in failed] == [failed[0]["reference"]] * 3
    assert retried == [f"outbox {r['id']}: queued" for r in failed]
    assert resent == "sent 3, deferred 0, failed 0"
    reference = failed[0]["reference"]
    assert [line.split(" INFO ")[1] for line in resent_run.stderr.splitlines()] == [
        f"mailbot.outbox: ticket {reference}: acknowledgement sent (outbox 1)",
        f"mailbot.outbox: ticket {reference}: unit_notification sent (outbox 2)",
        f"mailbot.outbox: ticket {reference}: unit_notification sent (outbox 3)",
        "mailbot.outbox: outbox: 3 sent, 0 deferred, 0 failed",
    ]
    assert _summary(_outbox(config)) == [
        ("acknowledgement", "sent", 4),
        ("unit_notification", "sent", 4),
        ("unit_notification", "sent", 4),
    ]
    assert sorted(m.rcpt_tos for m in smtp_sink.messages) == [
        ("budi@example.com",),
        ("ekbang.porong@example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
    ]


def test_refusals_temporary_deferred_permanent_failed(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path / "mailbot.toml", data_dir=tmp_path / "storage", smtp=smtp_sink
    )
    mail = tmp_path / "lampu.eml"
    mail.write_bytes(COMPLAINT)
    mailbot(config, "import", str(mail))
    smtp_sink.fail_next(1, 451)
    smtp_sink.refuse("budi@example.com")

    sent = mailbot(config, "send").stdout.strip()
    rows = _outbox(config)

    assert sent == "sent 1, deferred 1, failed 1"
    assert [(r["status"], r["last_reply"]) for r in rows] == [
        ("failed", "refused budi@example.com: 550 5.1.1 Mailbox unavailable"),
        ("queued", "451 4.3.0 Refused by the test sink"),
        ("sent", "250 2.0.0 Queued as sink-1"),
    ]
