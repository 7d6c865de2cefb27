"""The IMAP side, against the real Dovecot of the test session."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dovecot import DovecotServer, ImapUser
from oauthserver import OAuthServer

from mailbot.config import AccountConfig, Security
from mailbot.errors import MailboxError
from mailbot.imap import FetchedMail, FolderState, Mailbox
from mailbot.oauth import RefreshTokenSource

WIB = timezone(timedelta(hours=7))


def complaint(number: int) -> bytes:
    """A small complaint as a citizen's mail program would send it."""
    return (
        f"From: Warga {number} <warga{number}@example.net>\r\n"
        "To: porong@sidoarjokab.go.id\r\n"
        f"Subject: Pengaduan nomor {number}\r\n"
        f"Message-ID: <pengaduan-{number}@example.net>\r\n"
        "\r\n"
        f"Jalan berlubang di depan rumah nomor {number}.\r\n"
    ).encode()


def uidvalidity(dovecot: DovecotServer, user: ImapUser, folder: str) -> int:
    with dovecot.session(user) as client:
        return int(client.select_folder(folder, readonly=True)[b"UIDVALIDITY"])


def oauth_account(
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    user: ImapUser,
    secret_env: Callable[[str], str],
) -> tuple[AccountConfig, str]:
    """An XOAUTH2 account over IMAPS for ``user`` and its refresh token."""
    refresh_token = oauth_server.issue_refresh_token(user.address)
    account = dovecot.account(
        user,
        "ssl",
        auth="oauth2",
        password_env=None,
        oauth2_token_url=oauth_server.token_url,
        oauth2_client_id=oauth_server.client_id,
        oauth2_client_secret_env=secret_env(oauth_server.client_secret),
        oauth2_refresh_token_env=secret_env(refresh_token),
    )
    return account, refresh_token


def utc_now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_password_login_and_select_over_each_security(
    dovecot: DovecotServer, imap_user: ImapUser, security: str
) -> None:
    dovecot.append(imap_user, complaint(1))
    account = dovecot.account(imap_user, security)  # type: ignore[arg-type]

    with Mailbox(account) as box:
        state = box.select()

    expected = uidvalidity(dovecot, imap_user, "INBOX")
    assert state == FolderState(uidvalidity=expected, uidnext=2, exists=1)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_default_trust_store_refuses_the_test_certificate(
    dovecot: DovecotServer, imap_user: ImapUser, security: Security
) -> None:
    account = dovecot.account(imap_user, security, ca_file=None)

    with pytest.raises(MailboxError) as refused:
        Mailbox(account).open()

    assert str(refused.value).startswith("account porong: connect failed: [SSL: ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_tls_verify_off_connects_and_warns_each_time(
    dovecot: DovecotServer, imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    account = dovecot.account(imap_user, "ssl", ca_file=None, tls_verify=False)

    with Mailbox(account) as box:
        exists = box.select().exists
    with Mailbox(account):
        pass

    assert exists == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "mailbot.imap"]
    assert (
        warnings
        == ["account porong: TLS certificate verification is off (tls_verify = false)"]
        * 2
    )


def test_wrong_password_is_refused_without_showing_it(
    dovecot: DovecotServer, imap_user: ImapUser, secret_env: Callable[[str], str]
) -> None:
    wrong = "Salah-Sandi-9876"
    account = dovecot.account(imap_user, password_env=secret_env(wrong))

    with pytest.raises(MailboxError) as refused:
        Mailbox(account).open()

    assert str(refused.value) == (
        "account porong: log in failed: [AUTHENTICATIONFAILED] Authentication failed."
    )
    assert wrong not in repr(refused.value.__cause__)


def test_server_down_is_a_mailbox_error(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    account = dovecot.account(imap_user)

    with dovecot.stopped(), pytest.raises(MailboxError) as down:
        Mailbox(account).open()

    assert str(down.value) == (
        "account porong: connect failed: [Errno 111] Connection refused"
    )


def test_using_a_closed_mailbox_is_a_mailbox_error(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    box = Mailbox(dovecot.account(imap_user))

    with pytest.raises(MailboxError) as refused:
        box.select()

    assert str(refused.value) == "account porong: not connected"


def test_login_logs_neither_password_nor_token_at_debug(
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    imap_users: Callable[[], ImapUser],
    secret_env: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    password_user, oauth_user = imap_users(), imap_users()
    account, refresh_token = oauth_account(
        dovecot, oauth_server, oauth_user, secret_env
    )
    tokens = RefreshTokenSource(account, clock=utc_now)
    access_token = tokens.access_token()
    caplog.set_level(logging.DEBUG)

    with Mailbox(dovecot.account(password_user)) as box:
        box.select()
    with Mailbox(account, tokens=tokens) as box:
        box.select()

    logged = caplog.text
    assert "logged in as " + password_user.address in logged
    assert "logged in as " + oauth_user.address in logged
    assert "LOGIN **REDACTED**" in logged
    for secret in (password_user.password, access_token, refresh_token):
        assert secret not in logged
    assert oauth_server.client_secret not in logged


def test_xoauth2_login_with_a_token_dovecot_introspects(
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    imap_user: ImapUser,
    secret_env: Callable[[str], str],
) -> None:
    account, _ = oauth_account(dovecot, oauth_server, imap_user, secret_env)
    dovecot.append(imap_user, complaint(7))
    requests, introspections = oauth_server.token_requests, oauth_server.introspections

    with Mailbox(account, tokens=RefreshTokenSource(account, clock=utc_now)) as box:
        state = box.select()

    assert state.exists == 1
    assert oauth_server.token_requests - requests == 1
    assert oauth_server.introspections - introspections == 1


def test_revoked_refresh_token_is_a_mailbox_error(
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    imap_user: ImapUser,
    secret_env: Callable[[str], str],
) -> None:
    account, refresh_token = oauth_account(dovecot, oauth_server, imap_user, secret_env)
    oauth_server.revoke(refresh_token)

    with pytest.raises(MailboxError) as refused:
        Mailbox(account).open()

    assert str(refused.value) == (
        "account porong: the token endpoint refused the refresh token "
        "(HTTP 400, invalid_grant)"
    )


def test_access_token_revoked_after_issue_is_refused_by_dovecot(
    dovecot: DovecotServer,
    oauth_server: OAuthServer,
    imap_user: ImapUser,
    secret_env: Callable[[str], str],
) -> None:
    account, refresh_token = oauth_account(dovecot, oauth_server, imap_user, secret_env)
    tokens = RefreshTokenSource(account, clock=utc_now)
    access_token = tokens.access_token()
    oauth_server.revoke(refresh_token)

    with pytest.raises(MailboxError) as refused:
        Mailbox(account, tokens=tokens).open()

    assert str(refused.value) == (
        "account porong: log in failed: [AUTHENTICATIONFAILED] Authentication failed."
    )
    assert access_token not in str(refused.value)


def test_new_uids_and_fetch_read_exact_messages_without_marking_them(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    arrived = datetime(2026, 3, 2, 8, 15, 0, tzinfo=WIB)
    for number in (1, 2, 3):
        dovecot.append(imap_user, complaint(number), internal_date=arrived)
    account = dovecot.account(imap_user)

    with Mailbox(account) as box:
        box.select()
        everything, after_one, after_last = (box.new_uids(n) for n in (0, 1, 3))
        fetched = box.fetch([2, 3])

    assert (everything, after_one, after_last) == ([1, 2, 3], [2, 3], [])
    in_utc = datetime(2026, 3, 2, 1, 15, 0, tzinfo=UTC)
    assert fetched == [
        FetchedMail(uid=2, raw=complaint(2), internal_date=in_utc),
        FetchedMail(uid=3, raw=complaint(3), internal_date=in_utc),
    ]
    assert fetched[0].internal_date is not None
    assert fetched[0].internal_date.utcoffset() == timedelta(0)
    assert dovecot.flags(imap_user) == {1: set(), 2: set(), 3: set()}


def test_fetch_in_batches_leaves_out_uids_that_are_gone(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    uids = dovecot.seed(imap_user, [complaint(n) for n in range(1, 6)])
    account = dovecot.account(imap_user, batch_size=2)

    with Mailbox(account) as box:
        box.select()
        fetched = box.fetch([*uids, 99])

    assert uids == [1, 2, 3, 4, 5]
    assert [(m.uid, m.raw) for m in fetched] == [(n, complaint(n)) for n in uids]


def test_new_uids_in_a_gmail_style_folder(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    folder = "Pengaduan/Masuk"
    dovecot.seed(imap_user, [complaint(1), complaint(2)], folder=folder)
    account = dovecot.account(imap_user, folder=folder)

    with Mailbox(account) as box:
        state = box.select()
        nothing_new = box.new_uids(state.uidnext - 1)
        everything = box.new_uids(0)

    assert (state.uidnext, state.exists) == (3, 2)
    assert (nothing_new, everything) == ([], [1, 2])


def test_mark_handled_sets_seen(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    dovecot.seed(imap_user, [complaint(n) for n in (1, 2, 3)])

    with Mailbox(dovecot.account(imap_user)) as box:
        box.select()
        box.mark_handled([1, 3])

    assert dovecot.flags(imap_user) == {1: {"\\Seen"}, 2: set(), 3: {"\\Seen"}}


def test_mark_handled_moves_to_a_processed_folder_it_creates(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.seed(imap_user, [complaint(n) for n in (1, 2, 3)])
    account = dovecot.account(imap_user, processed_folder="Pengaduan/Diproses")

    with Mailbox(account) as box:
        box.select()
        box.mark_handled([1])
        box.mark_handled([3])

    assert dovecot.folder_uids(imap_user, "INBOX") == [2]
    assert dovecot.folder_uids(imap_user, "Pengaduan/Diproses") == [1, 2]
    assert dovecot.flags(imap_user, "Pengaduan/Diproses") == {1: set(), 2: set()}


def test_idle_wait_wakes_when_another_connection_appends(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    delivery = threading.Timer(0.2, dovecot.append, (imap_user, complaint(5)))

    with Mailbox(dovecot.account(imap_user)) as box:
        box.select()
        started = time.monotonic()
        delivery.start()
        changed = box.idle_wait(10.0)
        waited = time.monotonic() - started
        new = box.new_uids(0)
    delivery.join()

    assert changed is True
    assert waited < 5.0
    assert new == [1]


def test_idle_wait_returns_false_when_nothing_happens(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    with Mailbox(dovecot.account(imap_user)) as box:
        box.select()
        started = time.monotonic()
        changed = box.idle_wait(0.3)
        waited = time.monotonic() - started
        box.noop()

    assert changed is False
    assert 0.3 <= waited < 2.0
