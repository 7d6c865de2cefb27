"""Watching: near-instant intake for ``mailbot run`` through IMAP IDLE.

One thread per account keeps its own connection in IDLE (RFC 2177) and, when
the folder changes, wakes the scheduler, which then polls and sends at once.
The scheduled poll stays the fallback: an account whose server does not offer
IDLE, or whose watch connection fails, is still polled on its interval. The
watch threads only wait and signal; they never touch the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from mailbot.config import AccountConfig
from mailbot.errors import MailboxError
from mailbot.imap import IDLE_LIMIT_SECONDS, Mailbox

log = logging.getLogger(__name__)

MailboxFactory = Callable[[AccountConfig], Mailbox]


class Watcher:
    """Keeps an IDLE connection per account and sets ``wake`` on new mail."""

    def __init__(
        self,
        open_mailbox: MailboxFactory,
        wake: threading.Event,
        *,
        idle_seconds: float = IDLE_LIMIT_SECONDS,
        first_retry_seconds: float = 5.0,
        retry_seconds: float = 60.0,
    ) -> None:
        self.open_mailbox = open_mailbox
        self.wake = wake
        # Re-issued before servers drop an idle client (Gmail after ~29 min).
        self.idle_seconds = min(idle_seconds, IDLE_LIMIT_SECONDS)
        # A server back after a restart is watched again within seconds; one
        # that stays down is tried ever less often, up to retry_seconds.
        self.first_retry_seconds = min(first_retry_seconds, retry_seconds)
        self.retry_seconds = retry_seconds
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._boxes: dict[str, Mailbox] = {}
        self._lock = threading.Lock()

    def start(self, accounts: Sequence[AccountConfig]) -> None:
        """One daemon thread per account."""
        for account in accounts:
            thread = threading.Thread(
                target=self._watch,
                args=(account,),
                name=f"watch-{account.name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """End the threads: their connections are cut, their waits end."""
        self.stopping.set()
        with self._lock:
            boxes = list(self._boxes.values())
        for box in boxes:
            box.interrupt()

    def _watch(self, account: AccountConfig) -> None:
        delay = self.first_retry_seconds
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                if not self._idle_session(account):
                    return
            except MailboxError as exc:
                if self.stopping.is_set():
                    return
                if time.monotonic() - started > self.retry_seconds:
                    delay = self.first_retry_seconds  # it had been watching
                log.warning(
                    "account %s: watch connection failed, retrying in %g s: %s",
                    account.name,
                    delay,
                    exc,
                )
            self.stopping.wait(delay)
            delay = min(delay * 2, self.retry_seconds)

    def _idle_session(self, account: AccountConfig) -> bool:
        """Wait in IDLE until stopped; False when the server has no IDLE."""
        with self.open_mailbox(account) as box, self._held(account.name, box):
            if not box.can_idle():
                log.info("account %s: no IDLE, polled on schedule", account.name)
                return False
            box.select()
            # Mail may have come while the watch was down: poll now.
            self.wake.set()
            log.info("account %s: watching with IDLE", account.name)
            while not self.stopping.is_set():
                if box.idle_wait(self.idle_seconds):
                    log.debug("account %s: folder changed", account.name)
                    self.wake.set()
        return True

    @contextmanager
    def _held(self, name: str, box: Mailbox) -> Iterator[None]:
        with self._lock:
            self._boxes[name] = box
        try:
            yield
        finally:
            with self._lock:
                self._boxes.pop(name, None)
