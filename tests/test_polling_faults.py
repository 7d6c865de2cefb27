"""IMAP faults: a server gone mid-batch, a bad account, a broken library call."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clirun import SIGNING_KEY, Inbox, account_toml, mailbot, tickets_json, write_config
from dovecot import DovecotServer, ImapUser
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import AccountConfig, load_settings
from mailbot.db import make_engine, upgrade
from mailbot.imap import Mailbox
from mailbot.models import MailboxState
from mailbot.polling import Poller

SENDERS = ["budi", "siti", "dewi", "ahmad", "sri"]


def _complaint(sender: str) -> bytes:
    return (
        f"From: {sender.title()} <{sender}@example.com>\n"
        "To: porong@sidoarjokab.go.id\n"
        f"Subject: Sampah menumpuk dekat rumah {sender}\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0700\n"
        f"Message-ID: <{sender}-sampah@example.com>\n"
        'Content-Type: text/plain; charset="utf-8"\n\n'
        "Sampah tidak diangkut seminggu.\n"
    ).encode()


class DropAtFetch:
    """The real mailbox; its connection is cut before the N-th FETCH."""

    def __init__(self, box: Mailbox, at_fetch: int) -> None:
        self.box = box
        self.at_fetch = at_fetch
        self.fetches = 0

    def __enter__(self) -> DropAtFetch:
        self.box.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.box.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box, name)

    def fetch(self, uids: list[int]) -> Any:
        self.fetches += 1
        if self.fetches == self.at_fetch:
            # As a NAT timeout or a server restart would: the socket is gone.
            client: Any = self.box._client
            client.socket().shutdown(socket.SHUT_RDWR)
        return self.box.fetch(uids)


def _office(tmp_path: Path, dovecot: DovecotServer, *inboxes: Inbox) -> Path:
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, i, batch_size=2) for i in inboxes],
    )
    upgrade(make_engine(load_settings(config).storage.url))
    return config


def _waiting(app: App) -> int:
    with app.sessions() as session:
        return session.scalars(select(MailboxState.waiting)).one()


def _progress(app: App) -> tuple[bool, str]:
    """Whether a success is recorded, and the start of the recorded error."""
    with app.sessions() as session:
        state = session.scalars(select(MailboxState)).one()
        return state.last_success_at is not None, state.last_error[:29]


def test_server_gone_mid_batch_resumes_without_loss_or_duplicates(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _office(tmp_path, dovecot, Inbox("dinas", imap_user, "porong@x.go.id"))
    dovecot.seed(imap_user, [_complaint(s) for s in SENDERS])
    monkeypatch.setenv("MAILBOT_TEST_SIGNING_KEY", SIGNING_KEY)
    app = App.build(load_settings(config))
    poller = Poller(
        app.intake,
        app.sessions,
        app.clock,
        lambda account: DropAtFetch(Mailbox(account), 2),
        lock_seconds=60,
    )

    [broken] = poller.poll_all(app.settings.accounts)
    waiting_after_failure = _waiting(app)
    progress_after_failure = _progress(app)
    second = mailbot(config, "poll", "--once")
    third = mailbot(config, "poll", "--once")

    assert (broken.fetched, broken.outcomes) == (2, {"ticket": 2})
    assert broken.error.startswith("account dinas: fetch failed: ")
    assert second.stdout.strip() == "dinas: 3 fetched (3 ticket)"
    assert third.stdout.strip() == "dinas: 0 fetched"
    assert (waiting_after_failure, _waiting(app)) == (3, 0)
    # The first batch was progress: recorded as a success beside the error.
    assert progress_after_failure == (True, "account dinas: fetch failed: ")
    assert sorted(t["complainant_email"] for t in tickets_json(config)) == sorted(
        f"{s}@example.com" for s in SENDERS
    )


def test_a_bad_account_never_blocks_the_next(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    secret_env: Callable[[str], str],
) -> None:
    good_user = imap_users()
    bad_user = imap_users()
    bad = Inbox("bad", bad_user, "porong@x.go.id")
    bad_wrong = Inbox(
        "bad", type(bad_user)(bad_user.address, "x", secret_env("wrong")), bad.address
    )
    config = _office(
        tmp_path, dovecot, bad_wrong, Inbox("good", good_user, "gmail@x.go.id")
    )
    dovecot.append(good_user, _complaint("budi"))

    polled = mailbot(config, "poll", "--once", check=False)

    assert polled.returncode == 1
    assert polled.stdout.splitlines() == [
        "bad: error: account bad: log in failed: [AUTHENTICATIONFAILED] "
        "Authentication failed.",
        "good: 1 fetched (1 ticket)",
    ]


class Broken:
    """A mailbox whose library call fails in a way nobody foresaw."""

    def __init__(self, account: AccountConfig) -> None:
        self.account = account

    def __enter__(self) -> Broken:
        raise RuntimeError("unexpected server answer")

    def __exit__(self, *exc: Any) -> None:
        """Never entered."""


def test_an_unforeseen_error_in_one_account_is_recorded_and_the_next_polled(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = imap_users(), imap_users()
    config = _office(
        tmp_path,
        dovecot,
        Inbox("first", first, "porong@x.go.id"),
        Inbox("second", second, "gmail@x.go.id"),
    )
    dovecot.append(second, _complaint("siti"))
    monkeypatch.setenv("MAILBOT_TEST_SIGNING_KEY", SIGNING_KEY)
    app = App.build(load_settings(config))

    def open_mailbox(account: AccountConfig) -> Any:
        return Broken(account) if account.name == "first" else Mailbox(account)

    poller = Poller(app.intake, app.sessions, app.clock, open_mailbox, lock_seconds=60)
    with caplog.at_level(logging.ERROR):
        reports = poller.poll_all(app.settings.accounts)

    assert [(r.account, r.error, r.outcomes) for r in reports] == [
        ("first", "RuntimeError: unexpected server answer", {}),
        ("second", "", {"ticket": 1}),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "account first: poll failed unexpectedly"
    ]
