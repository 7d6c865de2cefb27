"""Leases: locks in the database that expire, so a dead holder never blocks forever.

One poller works an account at a time; the lease is renewed while it works and
taken over by another process once it has expired.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from mailbot.db import SessionFactory
from mailbot.models import Lease

log = logging.getLogger(__name__)


def acquire(
    sessions: SessionFactory, name: str, holder: str, *, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease; False while someone else holds it."""
    try:
        with sessions.begin() as session:
            lease = session.scalar(
                select(Lease).where(Lease.name == name).with_for_update()
            )
            if lease is None:
                session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
                return True
            expired = lease.expires_at <= now
            gone = not expired and holder_is_dead(lease.holder)
            if lease.holder != holder and not (expired or gone):
                return False
            if lease.holder != holder:
                why = "its process is gone" if gone else "expired"
                log.warning(
                    "lease %s: taken over from %s (%s)", name, lease.holder, why
                )
            lease.holder = holder
            lease.expires_at = now + ttl
            return True
    except IntegrityError:
        # Another process created the row between our read and our insert.
        return False


def holder_is_dead(holder: str) -> bool:
    """Whether a holder on this host is a process that is gone."""
    # A holder on this host whose process is gone died without releasing: a
    # restart after a crash should not wait for the lease to expire.
    place, _, pid = holder.rpartition(":")
    if place != _this_place() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def holder_name() -> str:
    """Who holds a lease: this host, PID namespace and process."""
    return f"{_this_place()}:{os.getpid()}"


@functools.cache
def _this_place() -> str:
    # A PID names a process only inside its PID namespace: two containers on
    # one host name (host networking) would each take the other's live
    # workers for dead, and two PID-1 workers would share one name.
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace}"


def release(sessions: SessionFactory, name: str, holder: str) -> None:
    """Give the lease back, if we still hold it."""
    with sessions.begin() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
