"""A local OAuth2 token and introspection endpoint, standing in for Google's.

Dovecot asks it whether an XOAUTH2 token is valid; mailbot asks it for tokens.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs

from servers import LOOPBACK


@dataclass
class _Grant:
    email: str
    expires_in: int
    revoked: bool = False


@dataclass
class _OAuthState:
    client_id: str
    client_secret: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    grants: dict[str, _Grant] = field(default_factory=dict)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    token_requests: int = 0
    introspections: int = 0


class _OAuthHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode("ascii"))
        fields = {key: values[0] for key, values in form.items()}
        state = cast(Any, self.server).state

        if self.path == "/token":
            status, body = _token_reply(state, fields)
        elif self.path == "/introspect":
            status, body = 200, _introspection_reply(state, fields.get("token", ""))
        else:
            status, body = 404, {"error": "not_found"}

        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


def _token_reply(state: _OAuthState, fields: dict[str, str]) -> tuple[int, object]:
    with state.lock:
        state.token_requests += 1
        if fields.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        # A public client (no secret) is accepted, as Google does for some apps.
        secret = fields.get("client_secret", state.client_secret)
        if fields.get("client_id") != state.client_id or secret != state.client_secret:
            return 401, {"error": "invalid_client"}
        grant = state.grants.get(fields.get("refresh_token", ""))
        if grant is None or grant.revoked:
            return 400, {"error": "invalid_grant"}

        token = "at-" + secrets.token_urlsafe(24)
        state.access[token] = (fields["refresh_token"], time.time() + grant.expires_in)
    reply = {"access_token": token, "expires_in": grant.expires_in}
    return 200, {**reply, "token_type": "Bearer"}


def _introspection_reply(state: _OAuthState, token: str) -> object:
    with state.lock:
        state.introspections += 1
        refresh, expires_at = state.access.get(token, ("", 0.0))
        grant = state.grants.get(refresh)
        if grant is None or grant.revoked or time.time() >= expires_at:
            return {"active": False}
        return {"active": True, "email": grant.email}


class OAuthServer:
    """A Google-like token endpoint and Dovecot's introspection endpoint."""

    client_id = "mailbot-test.apps.example"

    def __init__(self) -> None:
        self._state = _OAuthState(self.client_id, "cs-" + secrets.token_urlsafe(16))
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), _OAuthHandler)
        self._httpd.daemon_threads = True
        cast(Any, self._httpd).state = self._state
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def client_secret(self) -> str:
        return self._state.client_secret

    @property
    def token_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/introspect"

    @property
    def token_requests(self) -> int:
        """How many requests the token endpoint has answered so far."""
        with self._state.lock:
            return self._state.token_requests

    @property
    def introspections(self) -> int:
        with self._state.lock:
            return self._state.introspections

    def issue_refresh_token(self, email: str, expires_in: int = 3600) -> str:
        """A new refresh token for ``email``; its access tokens live ``expires_in``."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._state.lock:
            self._state.grants[token] = _Grant(email, expires_in)
        return token

    def revoke(self, refresh_token: str) -> None:
        """Refuse this refresh token and every access token it produced."""
        with self._state.lock:
            self._state.grants[refresh_token].revoked = True

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
