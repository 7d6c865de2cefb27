"""OAuth2 access tokens from a refresh token, against the local token endpoint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from oauthserver import OAuthServer
from servers import LOOPBACK, free_ports

from mailbot.config import AccountConfig
from mailbot.errors import ConfigError, MailboxError
from mailbot.oauth import RefreshTokenSource

START = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def gmail_account(token_url: str, **fields: Any) -> AccountConfig:
    values: dict[str, Any] = {
        "name": "gmail",
        "host": "imap.gmail.com",
        "port": 993,
        "username": "kecamatanporong@gmail.com",
        "auth": "oauth2",
        "oauth2_token_url": token_url,
        "oauth2_client_id": OAuthServer.client_id,
        "oauth2_refresh_token_env": "MAILBOT_TEST_NO_SUCH_VARIABLE",
        "timeout_seconds": 5.0,
    }
    return AccountConfig.model_validate({**values, **fields})


@pytest.fixture
def account_for(
    oauth_server: OAuthServer, secret_env: Callable[[str], str]
) -> Callable[..., tuple[AccountConfig, str]]:
    """An account with a fresh refresh token: ``account_for(expires_in=3600)``."""

    def make(expires_in: int = 3600, **fields: Any) -> tuple[AccountConfig, str]:
        refresh_token = oauth_server.issue_refresh_token(
            "kecamatanporong@gmail.com", expires_in
        )
        values = {
            "oauth2_client_secret_env": secret_env(oauth_server.client_secret),
            "oauth2_refresh_token_env": secret_env(refresh_token),
            **fields,
        }
        return gmail_account(oauth_server.token_url, **values), refresh_token

    return make


def test_token_is_kept_and_renewed_five_minutes_before_it_expires(
    oauth_server: OAuthServer, account_for: Callable[..., tuple[AccountConfig, str]]
) -> None:
    account, _ = account_for(expires_in=3600)
    clock = FakeClock()
    tokens = RefreshTokenSource(account, clock=clock)
    before = oauth_server.token_requests

    first = tokens.access_token()
    clock.now = START + timedelta(seconds=3299)
    still = tokens.access_token()
    asked_while_valid = oauth_server.token_requests - before
    clock.now = START + timedelta(seconds=3300)
    renewed = tokens.access_token()

    assert still == first
    assert asked_while_valid == 1
    assert renewed != first
    assert oauth_server.token_requests - before == 2


def test_short_lived_token_is_renewed_at_half_its_life(
    oauth_server: OAuthServer, account_for: Callable[..., tuple[AccountConfig, str]]
) -> None:
    account, _ = account_for(expires_in=300)
    clock = FakeClock()
    tokens = RefreshTokenSource(account, clock=clock)
    before = oauth_server.token_requests

    first = tokens.access_token()
    clock.now = START + timedelta(seconds=149)
    kept = tokens.access_token()
    clock.now = START + timedelta(seconds=150)
    renewed = tokens.access_token()

    assert kept == first != renewed
    assert oauth_server.token_requests - before == 2


def test_client_secret_is_optional(
    account_for: Callable[..., tuple[AccountConfig, str]],
) -> None:
    account, _ = account_for(oauth2_client_secret_env=None)

    token = RefreshTokenSource(account, clock=FakeClock()).access_token()

    assert token.startswith("at-")


def test_wrong_client_secret_is_refused_without_showing_it(
    account_for: Callable[..., tuple[AccountConfig, str]],
    secret_env: Callable[[str], str],
) -> None:
    wrong = "cs-Bukan-Rahasia-Yang-Benar"
    account, _ = account_for(oauth2_client_secret_env=secret_env(wrong))

    with pytest.raises(MailboxError) as refused:
        RefreshTokenSource(account, clock=FakeClock()).access_token()

    assert str(refused.value) == (
        "account gmail: the token endpoint refused the refresh token "
        "(HTTP 401, invalid_client)"
    )
    assert wrong not in str(refused.value)


def test_revoked_refresh_token_is_refused_without_showing_it(
    oauth_server: OAuthServer, account_for: Callable[..., tuple[AccountConfig, str]]
) -> None:
    account, refresh_token = account_for()
    oauth_server.revoke(refresh_token)

    with pytest.raises(MailboxError) as refused:
        RefreshTokenSource(account, clock=FakeClock()).access_token()

    assert str(refused.value) == (
        "account gmail: the token endpoint refused the refresh token "
        "(HTTP 400, invalid_grant)"
    )
    assert refresh_token not in str(refused.value)


def test_unreachable_endpoint_is_a_mailbox_error(
    secret_env: Callable[[str], str],
) -> None:
    port = free_ports(1)[0]
    account = gmail_account(
        f"http://{LOOPBACK}:{port}/token",
        oauth2_refresh_token_env=secret_env("rt-never-sent"),
    )

    with pytest.raises(MailboxError) as refused:
        RefreshTokenSource(account, clock=FakeClock()).access_token()

    assert str(refused.value) == (
        "account gmail: token endpoint unreachable: "
        "<urlopen error [Errno 111] Connection refused>"
    )


def test_answer_without_json_is_a_mailbox_error(
    secret_env: Callable[[str], str],
) -> None:
    def gateway_error(url: str, fields: Mapping[str, str], timeout: float) -> Any:
        return 502, b"<html>Bad Gateway</html>"

    account = gmail_account(
        "https://oauth2.googleapis.com/token",
        oauth2_refresh_token_env=secret_env("rt-xyz"),
    )
    tokens = RefreshTokenSource(account, clock=FakeClock(), post_form=gateway_error)

    with pytest.raises(MailboxError) as refused:
        tokens.access_token()

    assert str(refused.value) == (
        "account gmail: the token endpoint refused the refresh token "
        "(HTTP 502, no error code)"
    )


def test_missing_expires_in_means_one_hour(secret_env: Callable[[str], str]) -> None:
    replies = iter([b'{"access_token": "at-1"}', b'{"access_token": "at-2"}'])

    def endpoint(url: str, fields: Mapping[str, str], timeout: float) -> Any:
        return 200, next(replies)

    account = gmail_account(
        "https://oauth2.googleapis.com/token",
        oauth2_refresh_token_env=secret_env("rt-xyz"),
    )
    clock = FakeClock()
    tokens = RefreshTokenSource(account, clock=clock, post_form=endpoint)

    first = tokens.access_token()
    clock.now = START + timedelta(minutes=54, seconds=59)
    kept = tokens.access_token()
    clock.now = START + timedelta(minutes=55)
    renewed = tokens.access_token()

    assert (first, kept, renewed) == ("at-1", "at-1", "at-2")


@pytest.mark.parametrize(
    "url",
    ["http://oauth2.googleapis.com/token", "ftp://127.0.0.1/token", "file:///etc/x"],
)
def test_token_url_must_be_https_unless_loopback(url: str) -> None:
    account = gmail_account(url)

    with pytest.raises(ConfigError) as refused:
        RefreshTokenSource(account, clock=FakeClock())

    assert str(refused.value) == (
        "accounts.gmail.oauth2_token_url: must be https:// "
        "(http:// only for a loopback host)"
    )


def test_missing_refresh_token_variable_names_the_key() -> None:
    account = gmail_account("https://oauth2.googleapis.com/token")
    tokens = RefreshTokenSource(account, clock=FakeClock())

    with pytest.raises(ConfigError) as missing:
        tokens.access_token()

    assert str(missing.value) == (
        "accounts.gmail.oauth2_refresh_token_env: "
        "environment variable MAILBOT_TEST_NO_SUCH_VARIABLE is not set"
    )
