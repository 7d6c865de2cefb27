"""The outbox when the SMTP server is down or refusing: backoff, failed, retry."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clirun import mailbot, write_config
from seeding import FixedClock, make_settings
from servers import LOOPBACK, free_ports
from smtpsink import SmtpSink

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Origin
from mailbot.outbox import backoff, deliver_due

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


def test_smtp_down_costs_one_attempt_a_run_and_the_rest_waits(
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
    first_run = mailbot(config, "send")
    first = first_run.stdout.strip()
    after_first = _outbox(config)
    second = mailbot(config, "send").stdout.strip()
    after_second = _outbox(config)
    smtp_sink.start()
    _wait_until_due(after_second)
    resent_run = mailbot(config, "-v", "send")

    assert [first, second] == ["sent 0, deferred 1, failed 0"] * 2
    assert first_run.stderr.splitlines()[-1].split(" WARNING ")[1] == (
        "mailbot.outbox: outbox: SMTP server unreachable; 3 letters wait, the "
        "oldest for 0 min"
    )
    # A run stops at the first letter that finds the server down, and the next
    # run tries the same one: the queue keeps its order. An outage costs no
    # attempt: attempts count the server's answers.
    assert _summary(after_first) == [
        ("acknowledgement", "queued", 0),
        ("unit_notification", "queued", 0),
        ("unit_notification", "queued", 0),
    ]
    assert [r["last_reply"][: len(refused)] for r in after_second] == [
        refused,
        "",
        "",
    ]
    assert after_second[0]["next_attempt_at"] == after_first[0]["next_attempt_at"]
    assert resent_run.stdout.strip() == "sent 3, deferred 0, failed 0"
    assert [line.split(" INFO ")[1] for line in resent_run.stderr.splitlines()][-1] == (
        "mailbot.outbox: outbox: 3 sent, 0 deferred, 0 failed"
    )
    assert _summary(_outbox(config)) == [
        ("acknowledgement", "sent", 1),
        ("unit_notification", "sent", 1),
        ("unit_notification", "sent", 1),
    ]
    assert sorted(m.rcpt_tos for m in smtp_sink.messages) == [
        ("budi@example.com",),
        ("ekbang.porong@example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
    ]


def test_an_outage_costs_no_attempts_until_its_lifetime_ends(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # One refusal would fail a letter; an outage of 7.2 s would too.
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        smtp=smtp_sink,
        smtp_settings="max_attempts = 1\nretry_base_seconds = 1.0\n"
        "outage_lifetime_hours = 0.002\n",
    )
    mail = tmp_path / "lampu.eml"
    mail.write_bytes(COMPLAINT)
    mailbot(config, "import", str(mail))

    smtp_sink.stop()
    within = mailbot(config, "send").stdout.strip()
    after_within = _outbox(config)
    created = datetime.fromisoformat(after_within[1]["created_at"])
    time.sleep(7.3 - (datetime.now(created.tzinfo) - created).total_seconds())
    beyond = mailbot(config, "send").stdout.strip()
    after_beyond = _outbox(config)

    assert within == "sent 0, deferred 1, failed 0"
    assert _summary(after_within)[0] == ("acknowledgement", "queued", 0)
    assert beyond == "sent 0, deferred 0, failed 1"
    assert _summary(after_beyond) == [
        ("acknowledgement", "failed", 0),
        ("unit_notification", "queued", 0),
        ("unit_notification", "queued", 0),
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

    sending = mailbot(config, "send")
    sent = sending.stdout.strip()
    rows = _outbox(config)
    smtp_sink.refused.clear()
    nothing_named = mailbot(config, "outbox", "retry", check=False)
    one_unknown = mailbot(
        config, "outbox", "retry", str(rows[0]["id"]), "99", check=False
    )
    after_unknown = _outbox(config, "--status", "failed")
    retried = mailbot(config, "outbox", "retry", "--failed").stdout.strip()
    none_failed = mailbot(config, "outbox", "retry", "--failed").stdout.strip()
    _wait_until_due(rows)
    resent = mailbot(config, "send").stdout.strip()

    assert nothing_named.returncode == 2
    assert nothing_named.stderr.splitlines()[-1] == (
        "Error: name the outbox IDs to retry, or give --failed"
    )
    assert retried == f"outbox {rows[0]['id']}: queued"
    assert (one_unknown.returncode, one_unknown.stdout) == (1, "")
    assert one_unknown.stderr == "error: no outbox message 99\n"
    assert [r["id"] for r in after_unknown] == [rows[0]["id"]]
    # Queued by hand, the letter starts its attempts afresh.
    assert _summary(_outbox(config)) == [
        ("acknowledgement", "sent", 1),
        ("unit_notification", "sent", 2),
        ("unit_notification", "sent", 1),
    ]
    assert none_failed == "no failed outgoing mail"
    assert resent == "sent 2, deferred 0, failed 0"
    assert sent == "sent 1, deferred 1, failed 1"
    # Trial 33: the log named the citizen; the row keeps the server's words.
    assert "budi@example.com" not in sending.stderr
    assert (
        "failed after 1 attempts: refused <address>: 550 5.1.1 Mailbox unavailable"
        in sending.stderr
    )
    assert [(r["status"], r["last_reply"]) for r in rows] == [
        ("failed", "refused budi@example.com: 550 5.1.1 Mailbox unavailable"),
        ("queued", "451 4.3.0 Refused by the test sink"),
        ("sent", "250 2.0.0 Queued as sink-1"),
    ]


def test_an_outage_that_lasts_half_an_hour_is_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    clock = FixedClock(start)
    down = SmtpConfig(host=LOOPBACK, port=free_ports(1)[0], security="none")
    app = App.build(make_settings(tmp_path).model_copy(update={"smtp": down}), clock)
    app.intake.receive(COMPLAINT, Origin("import", "", "test"))
    transport = app.transport()

    caplog.set_level(logging.WARNING, logger="mailbot.outbox")
    levels = []
    for minutes in (29, 30):
        clock.at = start + timedelta(minutes=minutes)
        caplog.clear()
        deliver_due(app.sessions, transport, down, clock)
        levels.append([(r.levelname, r.getMessage()) for r in caplog.records][-1])

    assert levels == [
        (
            "WARNING",
            "outbox: SMTP server unreachable; 3 letters wait, the oldest for 29 min",
        ),
        (
            "ERROR",
            "outbox: SMTP server unreachable; 3 letters wait, the oldest for 30 min",
        ),
    ]


def test_a_letter_the_server_hangs_up_on_costs_attempts_and_the_rest_goes(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        smtp=smtp_sink,
        smtp_settings="max_attempts = 2\nretry_base_seconds = 1.0\n",
    )
    mail = tmp_path / "lampu.eml"
    mail.write_bytes(COMPLAINT)
    mailbot(config, "import", str(mail))
    smtp_sink.dropped.add("budi@example.com")

    first = mailbot(config, "send").stdout.strip()
    rows = _outbox(config)
    _wait_until_due(rows)
    second = mailbot(config, "send").stdout.strip()

    assert first == "sent 2, deferred 1, failed 0"
    assert second == "sent 0, deferred 0, failed 1"
    assert _summary(_outbox(config)) == [
        ("acknowledgement", "failed", 2),
        ("unit_notification", "sent", 1),
        ("unit_notification", "sent", 1),
    ]
    assert rows[0]["last_reply"].startswith("connection lost: ")
