"""Leases: a live holder keeps its account; an expired or dead one loses it."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.db import SessionFactory, open_database
from mailbot.leases import acquire, holder_name, release

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


@pytest.fixture
def sessions(database_url: str) -> Iterator[SessionFactory]:
    factory = open_database(database_url)
    yield factory
    factory.kw["bind"].dispose()


def _dead_holder() -> str:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}:{child.stdout.strip()}"


def test_a_live_holder_keeps_the_lease_until_it_expires(
    sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    other = "elsewhere.example:4242"

    caplog.set_level(logging.WARNING, logger="mailbot.leases")
    first = acquire(sessions, "poll:dinas", other, now=NOW, ttl=TTL)
    refused = acquire(sessions, "poll:dinas", holder_name(), now=NOW + TTL / 2, ttl=TTL)
    taken = acquire(sessions, "poll:dinas", holder_name(), now=NOW + TTL, ttl=TTL)

    assert (first, refused, taken) == (True, False, True)
    assert caplog.messages == [f"lease poll:dinas: taken over from {other} (expired)"]


def test_a_dead_holder_on_this_host_loses_the_lease_at_once(
    sessions: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    dead = _dead_holder()

    caplog.set_level(logging.WARNING, logger="mailbot.leases")
    acquire(sessions, "poll:gmail", dead, now=NOW, ttl=TTL)
    taken = acquire(sessions, "poll:gmail", holder_name(), now=NOW, ttl=TTL)
    release(sessions, "poll:gmail", holder_name())
    after_release = acquire(
        sessions, "poll:gmail", "elsewhere.example:1", now=NOW, ttl=TTL
    )

    assert taken is True
    assert after_release is True
    assert caplog.messages == [
        f"lease poll:gmail: taken over from {dead} (its process is gone)"
    ]
