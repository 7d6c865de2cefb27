"""Leases: a live holder keeps its account; an expired or dead one loses it."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.db import SessionFactory, open_database
from mailbot.leases import acquire, holder_is_dead, holder_name, release

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
    here = holder_name().rpartition(":")[0]
    return f"{here}:{child.stdout.strip()}"


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


def test_a_live_process_of_another_pid_namespace_on_this_host_is_not_dead() -> None:
    # Trial 33: two containers with one host name took each other's live
    # workers for gone (the PID was free in their own namespace) and sent the
    # letters those workers were sending.
    here, _, pid = holder_name().rpartition(":")
    assert here == f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"

    verdicts = [
        holder_is_dead(f"{socket.gethostname()}/1:{_dead_holder().rpartition(':')[2]}"),
        holder_is_dead(f"{socket.gethostname()}:{_dead_holder().rpartition(':')[2]}"),
        holder_is_dead(f"{here}:{pid}"),
        holder_is_dead(_dead_holder()),
    ]

    assert verdicts == [False, False, False, True]
