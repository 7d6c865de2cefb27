"""Crash safety: SIGKILL at every step of poll, import and send, then start again.

``crashdriver.py`` kills a real mailbot process at its 1st, 2nd, 3rd ... step
(before and after each IMAP command, each intake, each SMTP hand-over), each new
process taking over what the dead one left. Afterwards every complaint is one
ticket, every letter was sent, and a letter was sent twice only where the kill
fell between the SMTP server's acceptance and our commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clirun import SIGNING_KEY, Inbox, account_toml, mailbot, tickets_json, write_config
from dovecot import DovecotServer, ImapUser
from smtpsink import SmtpSink

from mailbot.config import load_settings
from mailbot.db import make_engine, upgrade

DRIVER = Path(__file__).with_name("crashdriver.py")
SENDERS = ["budi", "siti", "dewi"]


def _complaint(sender: str) -> bytes:
    return (
        f"From: {sender.title()} <{sender}@example.com>\n"
        "To: porong@sidoarjokab.go.id\n"
        f"Subject: Lampu jalan mati di depan rumah {sender}\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0700\n"
        f"Message-ID: <{sender}-lampu@example.com>\n"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        "Lampu PJU mati sejak seminggu, jalan gelap.\n"
    ).encode()


def _crash(config: Path, command: str, mode: str, *paths: str) -> Any:
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(config), command, mode, *paths],
        capture_output=True,
        text=True,
        env={**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _expected(outbox: dict[str, int]) -> dict[str, Any]:
    return {
        "complainants": sorted(f"{s}@example.com" for s in SENDERS),
        "messages": [4, 4, 4],
        "inbound": {"ticket": 3},
        "outbox": outbox,
    }


def _points(results: list[dict[str, Any]]) -> list[str]:
    return [r.pop("point") for r in results]


@pytest.fixture
def office(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> Path:
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        # Each run restores the database but not the mailbox, whose messages a
        # finished run marked read: every run must take them all again.
        accounts=[account_toml(dovecot, inbox, batch_size=2, first_poll="all")],
        smtp=smtp_sink,
    )
    upgrade(make_engine(load_settings(config).storage.url))
    dovecot.seed(imap_user, [_complaint(s) for s in SENDERS])
    return config


POLL_STEPS = [
    *("status:before", "status:after"),
    *("select:before", "select:after", "new_uids:before", "new_uids:after"),
    *("fetch:before", "fetch:after"),
    *("receive_batch:before", "receive_batch:after"),
    *("mark_handled:before", "mark_handled:after"),
    *("fetch:before", "fetch:after"),
    *("receive_batch:before", "receive_batch:after"),
    *("mark_handled:before", "mark_handled:after"),
]


def test_kill_at_every_step_of_a_poll_then_restart(office: Path) -> None:
    results = _crash(office, "poll", "each")

    assert _points(results) == POLL_STEPS
    assert results == [_expected({"queued": 9})] * len(POLL_STEPS)


def test_kills_in_a_row_during_poll_then_send(
    office: Path, imap_user: ImapUser, dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    poll_kills = _crash(office, "poll", "chain")
    polled = mailbot(office, "poll", "--once")
    send_kills = _crash(office, "send", "chain")
    sent = mailbot(office, "send")

    assert poll_kills == [*POLL_STEPS[:12], "fetch:before"]
    assert polled.stdout.strip() == "dinas: 0 fetched"
    assert sent.stdout.strip() == "sent 0, deferred 0, failed 0"
    assert send_kills == ["deliver:before", "deliver:after"] * 3
    _assert_each_once(office)
    assert all("\\Seen" in f for f in dovecot.flags(imap_user).values())
    # Only a kill after the server accepted a letter, before our commit, sends
    # that letter a second time.
    assert len(smtp_sink.messages) == 9 + send_kills.count("deliver:after")
    assert {f"{s}@example.com" for s in SENDERS} <= {
        m.rcpt_tos[0] for m in smtp_sink.messages
    }


def test_kill_at_every_step_of_a_send_then_restart(
    office: Path, smtp_sink: SmtpSink
) -> None:
    mailbot(office, "poll", "--once")

    results = _crash(office, "send", "each")

    points = _points(results)
    assert points == ["deliver:before", "deliver:after"] * 9
    assert results == [_expected({"sent": 9})] * 18
    # Per kill point the killed run and the restart send nine letters in all
    # (an acknowledgement and two ekbang notices per ticket), ten where the kill
    # fell between the server's acceptance and our commit; the last run of the
    # driver, never killed, sends nine more.
    assert len(smtp_sink.messages) == 18 * 9 + points.count("deliver:after") + 9


def test_kill_at_every_step_of_an_import_then_restart(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path / "mailbot.toml", data_dir=tmp_path / "storage", smtp=smtp_sink
    )
    upgrade(make_engine(load_settings(config).storage.url))
    folder = tmp_path / "backlog"
    folder.mkdir()
    for sender in SENDERS:
        (folder / f"{sender}.eml").write_bytes(_complaint(sender))

    results = _crash(config, "import", "each", str(folder))

    # Three messages in batches of two: one transaction of two, one of one.
    assert _points(results) == ["receive_batch:before", "receive_batch:after"] * 2
    assert results == [_expected({"queued": 9})] * 4


def _assert_each_once(config: Path) -> None:
    tickets = tickets_json(config)
    assert sorted(t["complainant_email"] for t in tickets) == sorted(
        f"{s}@example.com" for s in SENDERS
    )
    assert [t["message_count"] for t in tickets] == [4, 4, 4]
    outbox = json.loads(mailbot(config, "outbox", "list", "--json").stdout)
    assert [row["status"] for row in outbox] == ["sent"] * 9
