"""The mailbox health watch: one alert per outage, one notice on recovery."""

from __future__ import annotations

import email
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

from clirun import Inbox, account_toml, mailbot, write_config
from dovecot import DovecotServer, ImapUser
from seeding import FixedClock, make_settings
from servers import LOOPBACK
from smtpsink import SmtpSink
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.health import assess
from mailbot.models import MailboxIncident, MailboxState, OutboxItem
from mailbot.service import Service, health_watch

WATCHERS = ["operator@porong.example.go.id", "kasubag@porong.example.go.id"]


def received(sink: SmtpSink) -> list[tuple[str, str]]:
    found = []
    for item in sink.messages:
        message = email.message_from_bytes(item.raw, policy=default)
        found.append((item.rcpt_tos[0], str(message["Subject"])))
    return found


def test_an_outage_is_told_once_and_the_recovery_once(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(tmp_path).model_copy(
        update={
            "accounts": (dovecot.account(imap_user, address="porong@x.go.id"),),
            "smtp": SmtpConfig(host=LOOPBACK, port=smtp_sink.port, security="none"),
        }
    )
    app = App.build(settings)
    service = Service(app, app.transport())
    alert = "[Peringatan] Kotak masuk porong@x.go.id tidak terbaca"
    recovered = "[Pulih] Kotak masuk porong@x.go.id terbaca kembali"

    try:
        service.poll()
        service.check_health()
        before = received(smtp_sink)
        with dovecot.stopped():
            for _ in range(3):
                service.poll()
                service.check_health()
            during = received(smtp_sink)
        for _ in range(2):
            service.poll()
            service.check_health()
        after = received(smtp_sink)
    finally:
        service.transport.close()

    assert before == []
    assert during == [(to, alert) for to in WATCHERS]
    assert after == [(to, alert) for to in WATCHERS] + [
        (to, recovered) for to in WATCHERS
    ]
    with app.sessions() as session:
        incident = session.query(MailboxIncident).one()
    assert incident.reason.startswith(
        "login atau pengambilan email gagal: account porong: connect failed"
    )
    assert incident.closed_at is not None


def test_an_account_that_has_not_polled_for_half_an_hour_is_stale() -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    fresh = MailboxState(last_error="", last_success_at=now - timedelta(minutes=30))
    stale = MailboxState(last_error="", last_success_at=now - timedelta(minutes=31))
    window = timedelta(minutes=30)

    # A first poll still reading its first batch has no success and no error.
    first_poll = MailboxState(last_error="", last_success_at=None)

    assert assess(None, now, window) == ""
    assert assess(first_poll, now, window) == ""
    assert assess(fresh, now, window) == ""
    assert assess(stale, now, window) == (
        "tidak ada pengambilan email yang berhasil selama 30 menit"
    )


def test_a_stale_account_alerts_by_itself(tmp_path: Path) -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    account = make_settings(tmp_path, _ACCOUNT).accounts[0]
    app = App.build(make_settings(tmp_path, _ACCOUNT), FixedClock(now))
    with app.sessions.begin() as session:
        session.add(
            MailboxState(
                account=account.name,
                folder="INBOX",
                last_error="",
                last_success_at=now - timedelta(minutes=45),
            )
        )
    watch = health_watch(app)

    first = watch.check(now)
    second = watch.check(now + timedelta(minutes=5))

    assert first.alerted == ("dinas",)
    assert second.alerted == ()
    with app.sessions() as session:
        rows = session.execute(
            select(OutboxItem.kind, OutboxItem.recipients).order_by(OutboxItem.id)
        ).all()
    assert rows == [("mailbox_alert", [to]) for to in WATCHERS]


_ACCOUNT = """
[[accounts]]
name = "dinas"
host = "127.0.0.1"
port = 1
security = "none"
username = "porong"
password_env = "NOT_USED"
"""


def test_check_connect_logs_into_every_account(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    secret_env: Callable[[str], str],
    smtp_sink: SmtpSink,
) -> None:
    good = Inbox("dinas", imap_users(), "porong@sidoarjokab.go.id")
    user = imap_users()
    bad = Inbox("gmail", replace(user, password_env=secret_env("wrong")), "k@x.id")
    dovecot.append(good.user, b"Subject: hi\r\n\r\nhello\r\n")
    # Read before mailbot's first poll: that poll leaves it alone, and so does
    # the count.
    dovecot.append(good.user, b"Subject: old\r\n\r\nread\r\n", flags=[r"\Seen"])
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, good)],
        smtp=smtp_sink,
    )
    broken = write_config(
        tmp_path / "broken.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, good), account_toml(dovecot, bad)],
        smtp=smtp_sink,
    )

    ok = mailbot(config, "check", "--connect")
    failed = mailbot(broken, "check", "--connect", check=False)

    assert ok.stdout.splitlines()[-2:] == [
        "account dinas: ok: logged in, 1 messages not yet imported",
        f"smtp {LOOPBACK}:{smtp_sink.port}: ok: connected and greeted",
    ]
    assert failed.returncode == 1
    assert "account gmail: FAILED: account gmail: log in failed" in failed.stdout
