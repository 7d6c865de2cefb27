"""The scheduler: ``mailbot run``, the one long-running process.

Runs the periodic jobs (poll, send) with ``schedule`` and owns the job error
boundary: a failing job is logged and runs again on its next turn. SIGTERM and
SIGINT stop the loop after the job in hand; a second instance on the same data
folder refuses to start.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import schedule

from mailbot.errors import AlreadyRunningError
from mailbot.intake import failure_reason, storage_trouble

log = logging.getLogger(__name__)

# The job new mail wakes; a poll that brings mail sends at once by itself.
WAKE_JOB = "poll"


class StopFlag:
    """Set by a signal; the loop checks it between jobs."""

    def __init__(self) -> None:
        self.stopped = False

    def set(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received: stopping after the job in hand", signum)
        self.stopped = True


@contextmanager
def single_instance(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the data folder for the life of the process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "mailbot-run.lock"
    with open(path, "a+", encoding="ascii") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AlreadyRunningError(
                f"another 'mailbot run' already works on {data_dir} (its lock: {path})"
            ) from exc
        yield


def guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """A job that logs its failure instead of ending the loop."""

    def run() -> None:
        try:
            job()
        except Exception as exc:  # the job boundary: log, retry next turn
            if storage_trouble(exc):
                # A database or disk that is down is expected: one line a turn.
                log.error(
                    "job %s failed: storage: %s; it runs again on its next turn",
                    name,
                    failure_reason(exc),
                )
                return
            log.exception("job %s failed; it runs again on its next turn", name)

    return run


def run_forever(
    jobs: Sequence[tuple[str, float, Callable[[], object]]],
    stop: StopFlag,
    *,
    tick: float = 0.5,
    wake: threading.Event | None = None,
) -> None:
    """Run each (name, every_seconds, job) until stopped; each job once at start.

    Setting ``wake`` (new mail seen by a watcher) runs the ``poll`` job at once;
    the others keep their own rhythm.
    """
    signal.signal(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, stop.set)
    scheduler = schedule.Scheduler()
    on_wake: list[Callable[[], None]] = []
    for name, seconds, job in jobs:
        wrapped = guarded(name, job)
        scheduler.every(max(1, round(seconds))).seconds.do(wrapped)
        if name == WAKE_JOB:
            on_wake.append(wrapped)
        if not stop.stopped:
            wrapped()

    log.info("running %d jobs: %s", len(jobs), ", ".join(name for name, _, _ in jobs))
    while not stop.stopped:
        scheduler.run_pending()
        if wake is None:
            time.sleep(tick)
        elif wake.wait(tick) and not stop.stopped:
            wake.clear()
            for job in on_wake:
                job()
    log.info("stopped")
