"""Polling: the hook after each committed batch, against the real Dovecot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from clirun import Inbox, account_toml
from dovecot import DovecotServer, ImapUser
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.config import parse_settings
from mailbot.imap import Mailbox
from mailbot.models import InboundMail, Lease
from mailbot.polling import Poller


def _complaint(n: int) -> bytes:
    return (
        f"From: Warga {n} <warga{n}@example.com>\r\nTo: porong@sidoarjokab.go.id\r\n"
        f"Subject: Lampu jalan mati {n}\r\nMessage-ID: <batch-{n}@example.com>\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\n\r\nLampu PJU mati.\r\n"
    ).encode()


def test_after_batch_runs_once_per_committed_batch(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")
    text = f'[storage]\ndata_dir = "{tmp_path}"\n' + account_toml(
        dovecot, inbox, batch_size=2
    )
    app = App.build(parse_settings(text, "test"))
    dovecot.seed(imap_user, [_complaint(n) for n in range(5)])
    poller = app.poller()
    committed: list[int] = []

    def count_committed() -> None:
        with app.sessions() as session:
            committed.append(session.scalar(select(func.count(InboundMail.id))) or 0)

    poller.after_batch = count_committed
    report = poller.poll(app.settings.accounts[0])

    assert report.fetched == 5
    assert committed == [2, 4, 5]


class CountingMailbox:
    """The real mailbox, counting the IMAP commands a poll sends."""

    def __init__(self, box: Mailbox, calls: list[str]) -> None:
        self.box = box
        self.calls = calls

    def __enter__(self) -> CountingMailbox:
        self.box.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.box.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        if name in {"status", "select", "new_uids", "fetch"}:
            self.calls.append(name)
        return getattr(self.box, name)


def test_a_poll_that_finds_nothing_new_asks_status_and_never_selects(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")
    text = f'[storage]\ndata_dir = "{tmp_path}"\n' + account_toml(dovecot, inbox)
    app = App.build(parse_settings(text, "test"))
    dovecot.seed(imap_user, [_complaint(n) for n in range(3)])
    calls: list[str] = []
    poller = Poller(
        app.intake,
        app.sessions,
        app.clock,
        lambda account: CountingMailbox(Mailbox(account), calls),
        lock_seconds=60,
    )

    caplog.set_level(logging.DEBUG, logger="mailbot.polling")
    first = poller.poll(app.settings.accounts[0])
    first_calls = list(calls)
    calls.clear()
    idle = poller.poll(app.settings.accounts[0])
    dovecot.append(imap_user, _complaint(3))
    idle_calls = list(calls)
    calls.clear()
    again = poller.poll(app.settings.accounts[0])

    assert (first.fetched, idle.fetched, again.fetched) == (3, 0, 1)
    assert first_calls == ["status", "select", "new_uids", "fetch"]
    assert idle_calls == ["status"]
    assert calls == ["status", "select", "new_uids", "fetch"]
    # An empty poll, every minute of the day, stays out of the INFO log.
    assert [
        (r.levelname, r.getMessage()) for r in caplog.records if "fetched" in r.message
    ] == [
        ("INFO", "account dinas: 3 fetched (3 ticket)"),
        ("DEBUG", "account dinas: 0 fetched (none)"),
        ("INFO", "account dinas: 1 fetched (1 ticket)"),
    ]


def _office(
    tmp_path: Path, dovecot: DovecotServer, user: ImapUser, **extra: Any
) -> App:
    inbox = Inbox("dinas", user, "porong@sidoarjokab.go.id")
    text = f'[storage]\ndata_dir = "{tmp_path}"\n' + account_toml(
        dovecot, inbox, **extra
    )
    return App.build(parse_settings(text, "test"))


def _tickets(app: App) -> list[str]:
    with app.sessions() as session:
        rows = session.scalars(select(InboundMail.source).order_by(InboundMail.id))
        return [source.rsplit(":", 1)[1] for source in rows]


def test_the_first_poll_of_a_folder_leaves_mail_already_read_alone(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    app = _office(tmp_path, dovecot, imap_user)
    read = [dovecot.append(imap_user, _complaint(n), flags=[r"\Seen"]) for n in (0, 1)]
    unread = dovecot.append(imap_user, _complaint(2))
    read_later = dovecot.append(imap_user, _complaint(3), flags=[r"\Seen"])
    poller = app.poller()
    account = app.settings.accounts[0]

    first = poller.poll(account)
    # Mail that arrives after the first poll is new, read or not: staff may
    # open it in webmail before mailbot gets to it.
    after = dovecot.append(imap_user, _complaint(4), flags=[r"\Seen"])
    second = poller.poll(account)

    assert (first.fetched, second.fetched) == (1, 1)
    assert _tickets(app) == [str(unread), str(after)]
    assert [*read, read_later] == [unread - 2, unread - 1, unread + 1]


def test_first_poll_all_takes_mail_already_read_too(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    app = _office(tmp_path, dovecot, imap_user, first_poll="all")
    uids = [dovecot.append(imap_user, _complaint(n), flags=[r"\Seen"]) for n in (0, 1)]

    report = app.poller().poll(app.settings.accounts[0])

    assert report.fetched == 2
    assert _tickets(app) == [str(uid) for uid in uids]


def test_a_first_poll_cut_short_is_a_first_poll_again(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    app = _office(tmp_path, dovecot, imap_user, batch_size=1)
    dovecot.append(imap_user, _complaint(0), flags=[r"\Seen"])
    unread = [dovecot.append(imap_user, _complaint(n)) for n in (1, 2)]
    dovecot.append(imap_user, _complaint(3), flags=[r"\Seen"])
    poller = app.poller()
    account = app.settings.accounts[0]

    def stop() -> None:
        raise KeyboardInterrupt

    poller.after_batch = stop
    with pytest.raises(KeyboardInterrupt):
        poller.poll(account)
    poller.after_batch = None
    again = poller.poll(account)
    idle = poller.poll(account)

    assert (again.fetched, idle.fetched) == (1, 0)
    assert _tickets(app) == [str(uid) for uid in unread]


def test_a_renumbered_folder_is_a_first_poll_again(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    app = _office(tmp_path, dovecot, imap_user, folder="Pengaduan")
    for n in (0, 1):
        dovecot.append(imap_user, _complaint(n), "Pengaduan", flags=[r"\Seen"])
    dovecot.append(imap_user, _complaint(2), "Pengaduan")
    poller = app.poller()
    account = app.settings.accounts[0]
    first = poller.poll(account)
    # The server moves: the folder comes back renumbered, what was read still
    # read, and one new complaint unread.
    with dovecot.session(imap_user) as client:
        client.delete_folder("Pengaduan")
    for n in (0, 1, 2):
        dovecot.append(imap_user, _complaint(n), "Pengaduan", flags=[r"\Seen"])
    new = dovecot.append(imap_user, _complaint(3), "Pengaduan")

    second = poller.poll(account)

    assert (first.fetched, first.outcomes) == (1, {"ticket": 1})
    assert (second.fetched, second.outcomes) == (1, {"ticket": 1})
    assert _tickets(app)[-1] == str(new)


def test_a_poller_that_lost_its_lease_stops_at_the_next_batch(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Trial 27: a worker frozen past its lease went on polling beside the
    # worker that had taken the account over.
    app = _office(tmp_path, dovecot, imap_user, batch_size=2)
    dovecot.seed(imap_user, [_complaint(n) for n in range(5)])
    poller = app.poller()

    def taken_over() -> None:
        with app.sessions.begin() as session:
            lease = session.get(Lease, "poll:dinas")
            assert lease is not None
            lease.holder = "other-host:4242"

    poller.after_batch = taken_over
    with caplog.at_level(logging.WARNING, logger="mailbot.polling"):
        report = poller.poll(app.settings.accounts[0])

    assert report.fetched == 2
    assert _tickets(app) == ["1", "2"]
    assert [r.getMessage() for r in caplog.records] == [
        "account dinas: another poller took the lease over; this poll stops"
    ]
    with app.sessions() as session:
        lease = session.get(Lease, "poll:dinas")
        assert lease is not None
        assert lease.holder == "other-host:4242"
