"""OAuth2 access tokens for mailbox logins (XOAUTH2, as Gmail wants).

Reads the account's token endpoint and client id, and the client secret and
refresh token from the environment variables its ``*_env`` keys name. Asks the
endpoint for an access token with the refresh-token grant (RFC 6749, section 6),
keeps it, and asks again a margin before it expires. Writes nothing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr

from mailbot.config import AccountConfig, is_loopback, read_secret
from mailbot.errors import ConfigError, MailboxError

log = logging.getLogger(__name__)

RENEWAL_MARGIN = timedelta(minutes=5)
DEFAULT_LIFETIME = 3600

PostForm = Callable[[str, Mapping[str, str], float], tuple[int, bytes]]


class TokenSource(Protocol):
    """Gives a currently valid OAuth2 access token for one account.

    Raises ``MailboxError`` when no token can be had; its message never holds a
    secret.
    """

    def access_token(self) -> str: ...


def post_form(url: str, fields: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """POST a urlencoded form; the HTTP status and the response body."""
    # The scheme was checked (https, or http to loopback) before we get here.
    request = urllib.request.Request(  # noqa: S310
        url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        headers={"Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, exc.read()
        finally:
            exc.close()


@dataclass(frozen=True)
class _Token:
    value: SecretStr
    renew_at: datetime


class RefreshTokenSource:
    """Access tokens from a refresh token, cached until shortly before expiry.

    Keep one per account for the life of the process: each new instance asks the
    token endpoint again.
    """

    def __init__(
        self,
        account: AccountConfig,
        *,
        clock: Callable[[], datetime],
        post_form: PostForm = post_form,
    ) -> None:
        self.account = account
        self._url = _checked_url(account)
        self._clock = clock
        self._post_form = post_form
        self._token: _Token | None = None
        # The IDLE watch threads and the poller share one source per account.
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """A valid access token, asking the endpoint only when needed."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._token.renew_at:
                self._token = self._request(now)
            return self._token.value.get_secret_value()

    def _request(self, now: datetime) -> _Token:
        status, body = self._post(self._form())
        reply = _json_object(body)

        token = reply.get("access_token")
        if status != 200 or not isinstance(token, str) or not token:
            raise MailboxError(
                f"account {self.account.name}: the token endpoint refused the "
                f"refresh token (HTTP {status}, {_error_code(reply)})"
            )

        lifetime = _lifetime(reply.get("expires_in"))
        log.debug(
            "account %s: new access token, valid %d s", self.account.name, lifetime
        )
        return _Token(SecretStr(token), now + _renewal_delay(lifetime))

    def _form(self) -> dict[str, str]:
        account = self.account
        key = f"accounts.{account.name}"
        refresh = read_secret(
            account.oauth2_refresh_token_env, f"{key}.oauth2_refresh_token_env"
        )
        form = {
            "grant_type": "refresh_token",
            "client_id": account.oauth2_client_id or "",
            "refresh_token": refresh.get_secret_value(),
        }
        if account.oauth2_client_secret_env:
            secret = read_secret(
                account.oauth2_client_secret_env, f"{key}.oauth2_client_secret_env"
            )
            form["client_secret"] = secret.get_secret_value()
        return form

    def _post(self, form: dict[str, str]) -> tuple[int, bytes]:
        try:
            return self._post_form(self._url, form, self.account.timeout_seconds)
        except OSError as exc:
            raise MailboxError(
                f"account {self.account.name}: token endpoint unreachable: {exc}"
            ) from exc


def _checked_url(account: AccountConfig) -> str:
    key = f"accounts.{account.name}.oauth2_token_url"
    url = account.oauth2_token_url
    if not url:
        raise ConfigError(f"{key}: needed for auth = 'oauth2'")

    parts = urllib.parse.urlsplit(url)
    # Plain http would send the refresh token in the clear: loopback only.
    if parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    ):
        return url
    raise ConfigError(f"{key}: must be https:// (http:// only for a loopback host)")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_code(reply: Mapping[str, Any]) -> str:
    # Only the RFC 6749 error code: free text could echo what we sent.
    code = reply.get("error")
    if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code):
        return code
    return "no error code"


def _lifetime(expires_in: object) -> int:
    if isinstance(expires_in, int | float) and expires_in > 0:
        return int(expires_in)
    if isinstance(expires_in, str) and expires_in.isdigit() and int(expires_in) > 0:
        return int(expires_in)
    return DEFAULT_LIFETIME


def _renewal_delay(lifetime: int) -> timedelta:
    # A token shorter-lived than twice the margin is renewed at half its life.
    life = timedelta(seconds=lifetime)
    return max(life - RENEWAL_MARGIN, life / 2)
