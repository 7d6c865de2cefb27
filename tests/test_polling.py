"""Polling: the hook after each committed batch, against the real Dovecot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clirun import Inbox, account_toml
from dovecot import DovecotServer, ImapUser
from sqlalchemy import func, select

from mailbot.app import App
from mailbot.config import parse_settings
from mailbot.imap import Mailbox
from mailbot.models import InboundMail
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
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
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
