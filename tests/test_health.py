"""The mailbox health watch: one alert per outage, one notice on recovery."""

from __future__ import annotations

import email
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest
from clirun import Inbox, account_toml, mailbot, write_config
from conftest import fresh_postgres_database
from dovecot import DovecotServer, ImapUser
from seeding import FixedClock, make_settings
from servers import LOOPBACK
from smtpsink import SmtpSink
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.db import current_revision, head_revision, make_engine, upgrade
from mailbot.health import assess
from mailbot.models import MailboxIncident, MailboxState, OutboxItem
from mailbot.service import Service, health_watch

GRACE = timedelta(minutes=5)
WATCHERS = ["operator@porong.example.go.id", "kasubag@porong.example.go.id"]


def received(sink: SmtpSink) -> list[tuple[str, str]]:
    found = []
    for item in sink.messages:
        message = email.message_from_bytes(item.raw, policy=default)
        found.append((item.rcpt_tos[0], str(message["Subject"])))
    return found


def _watched_service(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> tuple[App, Service, FixedClock]:
    settings = make_settings(tmp_path).model_copy(
        update={
            "accounts": (dovecot.account(imap_user, address="porong@x.go.id"),),
            "smtp": SmtpConfig(host=LOOPBACK, port=smtp_sink.port, security="none"),
        }
    )
    clock = FixedClock(datetime(2026, 12, 3, 1, 0, tzinfo=UTC))
    app = App.build(settings, clock)
    return app, Service(app, app.transport()), clock


def _poll_and_watch(service: Service, clock: FixedClock, times: int) -> None:
    # Two minutes apart, as polls with a short interval would be.
    for _ in range(times):
        clock.at += timedelta(minutes=2)
        service.poll()
        service.check_health()


ALERT = "[Peringatan] Kotak masuk porong@x.go.id tidak terbaca"
RECOVERED = "[Pulih] Kotak masuk porong@x.go.id terbaca kembali"


def test_an_outage_is_told_once_and_the_recovery_once(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> None:
    app, service, clock = _watched_service(tmp_path, dovecot, imap_user, smtp_sink)

    try:
        _poll_and_watch(service, clock, 1)
        before = received(smtp_sink)
        with dovecot.stopped():
            _poll_and_watch(service, clock, 2)
            within_grace = received(smtp_sink)
            _poll_and_watch(service, clock, 2)
            during = received(smtp_sink)
        _poll_and_watch(service, clock, 2)
        after = received(smtp_sink)
    finally:
        service.transport.close()

    assert before == []
    # Failing since the success at 01:02: 4 minutes is a hiccup, 6 an outage.
    assert within_grace == []
    assert during == [(to, ALERT) for to in WATCHERS]
    assert after == [(to, ALERT) for to in WATCHERS] + [
        (to, RECOVERED) for to in WATCHERS
    ]
    with app.sessions() as session:
        incident = session.query(MailboxIncident).one()
    assert incident.reason.startswith(
        "login atau pengambilan email gagal: account porong: connect failed"
    )
    # Opened from the last poll that worked, though told only after the grace.
    assert incident.opened_at == datetime(2026, 12, 3, 1, 2, tzinfo=UTC)
    recovery = email.message_from_bytes(smtp_sink.messages[-1].raw, policy=default)
    body = recovery.get_body(("plain",))
    assert body is not None
    assert (
        "Gangguan berlangsung 10 menit sejak Kamis, 3 Desember 2026 pukul 08.02 WIB"
        in " ".join(body.get_content().split())
    )
    assert incident.closed_at == datetime(2026, 12, 3, 1, 12, tzinfo=UTC)


def test_a_hiccup_shorter_than_the_grace_tells_nobody(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> None:
    app, service, clock = _watched_service(tmp_path, dovecot, imap_user, smtp_sink)

    try:
        _poll_and_watch(service, clock, 1)
        with dovecot.stopped():
            _poll_and_watch(service, clock, 2)
        _poll_and_watch(service, clock, 1)
    finally:
        service.transport.close()

    assert received(smtp_sink) == []
    with app.sessions() as session:
        assert session.query(MailboxIncident).count() == 0


def test_an_account_that_has_not_polled_for_half_an_hour_is_stale() -> None:
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    fresh = MailboxState(last_error="", last_success_at=now - timedelta(minutes=30))
    stale = MailboxState(last_error="", last_success_at=now - timedelta(minutes=31))
    window = timedelta(minutes=30)

    # A first poll still reading its first batch has no success and no error.
    first_poll = MailboxState(last_error="", last_success_at=None)

    assert assess(None, now, window, grace=GRACE) == ""
    assert assess(first_poll, now, window, grace=GRACE) == ""
    assert assess(fresh, now, window, grace=GRACE) == ""
    assert assess(stale, now, window, grace=GRACE) == (
        "tidak ada pengambilan email yang berhasil selama 30 menit"
    )


def test_a_failing_account_alerts_after_the_grace_or_at_once_if_it_never_worked() -> (
    None
):
    now = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
    refused = "account dinas: login failed"
    brief = MailboxState(last_error=refused, last_success_at=now - timedelta(minutes=4))
    long = MailboxState(last_error=refused, last_success_at=now - timedelta(minutes=5))
    never = MailboxState(last_error=refused, last_success_at=None)
    window = timedelta(minutes=30)

    assert assess(brief, now, window, grace=GRACE) == ""
    assert assess(long, now, window, grace=GRACE) == (
        "login atau pengambilan email gagal: account dinas: login failed"
    )
    assert assess(never, now, window, grace=GRACE) == assess(
        long, now, window, grace=GRACE
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

    assert ok.stdout.splitlines()[-3:] == [
        "database: ok: none yet; created on first use",
        "account dinas: ok: logged in, 1 messages not yet imported",
        f"smtp {LOOPBACK}:{smtp_sink.port}: ok: connected and greeted",
    ]
    assert failed.returncode == 1
    assert "account gmail: FAILED: account gmail: log in failed" in failed.stdout
    # Checking logins on a new machine makes no database and no signing key.
    assert not (tmp_path / "storage").exists()


@pytest.mark.postgres
def test_check_connect_reads_the_database_and_changes_nothing(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    # Trial 27: on PostgreSQL it migrated an empty database, and a database
    # that was not there stopped it before any login was tried.
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")

    def checked(url: str) -> list[object]:
        config = write_config(
            tmp_path / "mailbot.toml",
            data_dir=tmp_path / "storage",
            accounts=[account_toml(dovecot, inbox)],
            database_url=url,
        )
        done = mailbot(config, "check", "--connect", check=False)
        return [done.returncode, *done.stdout.splitlines()[-2:]]

    with fresh_postgres_database() as url:
        empty = checked(url)
        engine = make_engine(url)
        still_empty = current_revision(engine)
        upgrade(engine)
        engine.dispose()
        migrated = checked(url)
    missing = checked(url)

    logged_in = "account dinas: ok: logged in, 0 messages not yet imported"
    assert empty == [
        0,
        "database: ok: empty; mailbot upgrade creates the schema",
        logged_in,
    ]
    assert still_empty is None
    assert migrated == [0, f"database: ok: schema {head_revision(engine)}", logged_in]
    assert missing[0] == 1
    assert missing[1].startswith("database: FAILED: OperationalError: connection")
    # Trial 33: without the database the count was every message in the folder.
    assert missing[2] == "account dinas: ok: logged in, 0 messages (database not read)"
