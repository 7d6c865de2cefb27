"""Shared fixtures: real Dovecot, aiosmtpd and OAuth2 servers on 127.0.0.1.

Session-scoped servers are per process, so ``pytest -n 2`` gives every worker its
own Dovecot; each test takes fresh users from the pool and never shares them.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from dovecot import DovecotServer, ImapUser, launch_dovecot
from oauthserver import OAuthServer
from scratchdb import PostgresMissingError, scratch_database
from servers import TlsFiles, make_tls
from smtpsink import SinkMode, SmtpSink

_secret_names = itertools.count(1)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA and a server certificate for 127.0.0.1 / localhost."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[OAuthServer]:
    """The token and introspection endpoint, shared by the session."""
    server = OAuthServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot(tls: TlsFiles, oauth_server: OAuthServer) -> Iterator[DovecotServer]:
    """One running Dovecot per test process; its log must stay free of errors."""
    server = launch_dovecot(tls, oauth_server.introspection_url)
    yield server

    server.stop()
    problems = server.log_problems()
    if problems:
        pytest.fail("Dovecot logged problems:\n" + "\n".join(problems))
    server.remove()


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Put a secret into a fresh environment variable for this test; its name."""

    def put(value: str) -> str:
        name = f"MAILBOT_TEST_SECRET_{next(_secret_names)}"
        monkeypatch.setenv(name, value)
        return name

    return put


@pytest.fixture
def imap_users(
    dovecot: DovecotServer, secret_env: Callable[[str], str]
) -> Callable[[], ImapUser]:
    """Hand out fresh Dovecot users, each with ``password_env`` set."""

    def take() -> ImapUser:
        user = dovecot.take_user()
        return replace(user, password_env=secret_env(user.password))

    return take


@pytest.fixture
def imap_user(imap_users: Callable[[], ImapUser]) -> ImapUser:
    """One fresh Dovecot user with an empty mailbox."""
    return imap_users()


@pytest.fixture
def smtp_sinks(tls: TlsFiles) -> Iterator[Callable[..., SmtpSink]]:
    """Start SMTP sinks: ``smtp_sinks(mode="starttls", auth=(login, password))``."""
    started: list[SmtpSink] = []

    def start(
        mode: SinkMode = "plain", auth: tuple[str, str] | None = None
    ) -> SmtpSink:
        sink = SmtpSink(mode, tls, auth)
        sink.start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


@pytest.fixture
def smtp_sink(smtp_sinks: Callable[..., SmtpSink]) -> SmtpSink:
    """A plain SMTP sink without AUTH, fresh for this test."""
    return smtp_sinks()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    try:
        with scratch_database(f"mailbot_test_{secrets.token_hex(6)}") as url:
            yield url
    except PostgresMissingError as exc:
        pytest.fail(str(exc))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The storage tests run on both databases: a fresh one for each test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailbot.sqlite3'}"
        return
    with fresh_postgres_database() as url:
        yield url
