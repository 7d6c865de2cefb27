"""Polling: brings new mail from each IMAP account into intake.

Incremental by UID: per account and folder we keep UIDVALIDITY and the last UID
handled, so a poll that finds nothing costs the same for ten messages or a
hundred thousand. A message is marked handled on the server only after intake
has committed it; a crash in between means it is fetched again and recognised
as a duplicate. One failing account never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.clock import Clock
from mailbot.config import AccountConfig
from mailbot.db import SessionFactory
from mailbot.errors import MailboxError
from mailbot.imap import FetchedMail, FolderState, Mailbox
from mailbot.inbound import Origin
from mailbot.intake import Intake, failure_reason, storage_trouble
from mailbot.leases import acquire, holder_name, release
from mailbot.models import MailboxState

log = logging.getLogger(__name__)

MailboxFactory = Callable[[AccountConfig], Mailbox]


@dataclass(frozen=True)
class PollReport:
    account: str
    fetched: int
    outcomes: dict[str, int]
    error: str = ""
    skipped: bool = False


@dataclass(frozen=True)
class _Plan:
    """What one poll will fetch, in batches."""

    batches: list[list[int]]
    # On first contact: the folder's UIDVALIDITY and its highest UID, stored
    # once every batch is in.
    first_contact: tuple[int, int] | None = None


def uids_to_take(
    box: Mailbox, account: AccountConfig, last_uid: int, *, first_poll: bool
) -> list[int]:
    """The UIDs a poll takes from the selected folder: every one above
    ``last_uid``, or on a first poll with ``first_poll = "unseen"`` the unread
    ones only, so that a new installation or database leaves read mail alone."""
    if first_poll and account.first_poll == "unseen":
        return [uid for uid in box.unseen_uids() if uid > last_uid]
    return box.new_uids(last_uid)


def _in_batches(uids: list[int], size: int) -> list[list[int]]:
    return [uids[i : i + size] for i in range(0, len(uids), size)]


class Poller:
    """Polls every configured account once per call."""

    def __init__(
        self,
        intake: Intake,
        sessions: SessionFactory,
        clock: Clock,
        open_mailbox: MailboxFactory,
        *,
        lock_seconds: float,
    ) -> None:
        self.intake = intake
        self.sessions = sessions
        self.clock = clock
        self.open_mailbox = open_mailbox
        self.ttl = timedelta(seconds=lock_seconds)
        self.holder = holder_name()
        # Called after each committed batch: `mailbot run` sends the letters
        # of a batch at once rather than after a whole backlog is read.
        self.after_batch: Callable[[], object] | None = None

    def poll_all(self, accounts: Sequence[AccountConfig]) -> list[PollReport]:
        """Poll each account; an error in one is recorded and the rest go on."""
        return [self._poll_guarded(account) for account in accounts]

    def _poll_guarded(self, account: AccountConfig) -> PollReport:
        # The per-account boundary: an unforeseen failure of one account (a
        # library bug, a server answer nobody expected) must not starve the
        # accounts after it, poll after poll.
        try:
            return self.poll(account)
        except Exception as exc:
            if storage_trouble(exc):
                # The database or disk, not the account: said in one line, and
                # not recorded in the database that cannot take it.
                error = failure_reason(exc)
                log.error("account %s: poll stopped: storage: %s", account.name, error)
                return PollReport(account.name, 0, {}, error=error)
            log.exception("account %s: poll failed unexpectedly", account.name)
            error = f"{type(exc).__name__}: {exc}"
            self._record_error(account, error)
            return PollReport(account.name, 0, {}, error=error)

    def poll(self, account: AccountConfig) -> PollReport:
        """Poll one account under its lease."""
        lease = f"poll:{account.name}"
        if not acquire(
            self.sessions, lease, self.holder, now=self.clock.now(), ttl=self.ttl
        ):
            log.debug("account %s: another poller holds it, skipped", account.name)
            return PollReport(account.name, 0, {}, skipped=True)
        try:
            return self._poll_locked(account, lease)
        finally:
            release(self.sessions, lease, self.holder)

    def _poll_locked(self, account: AccountConfig, lease: str) -> PollReport:
        outcomes: dict[str, int] = {}
        fetched = 0
        try:
            with self.open_mailbox(account) as box:
                plan = self._plan(box, account)
                for number, batch in enumerate(plan.batches):
                    if number and not self._still_held(account, lease):
                        break
                    self._handle_batch(box, account, batch, outcomes)
                    fetched += len(batch)
                    if self.after_batch is not None:
                        self.after_batch()
                else:
                    # Only a first poll that took all it planned knows the folder.
                    if plan.first_contact is not None:
                        self._know_folder(account, *plan.first_contact)
        except MailboxError as exc:
            self._record_error(account, str(exc))
            log.error("account %s: poll failed: %s", account.name, exc)
            return PollReport(account.name, fetched, outcomes, error=str(exc))

        self._record_success(account)
        summary = ", ".join(
            f"{count} {name}" for name, count in sorted(outcomes.items())
        )
        # An empty poll every minute would bury the log; -v still shows it.
        log.log(
            logging.INFO if fetched else logging.DEBUG,
            "account %s: %d fetched (%s)",
            account.name,
            fetched,
            summary or "none",
        )
        return PollReport(account.name, fetched, outcomes)

    def _still_held(self, account: AccountConfig, lease: str) -> bool:
        # Renewed before each batch. A worker that stalled past its lease (a
        # paused machine, a blocked database) stops when another has taken
        # the account over, rather than poll it beside the new holder.
        now = self.clock.now()
        if acquire(self.sessions, lease, self.holder, now=now, ttl=self.ttl):
            return True
        log.warning(
            "account %s: another poller took the lease over; this poll stops",
            account.name,
        )
        return False

    def _plan(self, box: Mailbox, account: AccountConfig) -> _Plan:
        if self._nothing_new(box, account):
            return _Plan([])

        folder = box.select()
        last_uid, known = self._last_uid(account, folder.uidvalidity)
        if not known:
            return self._first_contact(box, account, folder, last_uid)
        uids = box.new_uids(last_uid)
        self._record_waiting(account, len(uids))
        return _Plan(_in_batches(uids, account.batch_size))

    def _first_contact(
        self, box: Mailbox, account: AccountConfig, folder: FolderState, last_uid: int
    ) -> _Plan:
        # Above last_uid: a first poll cut short goes on where it stopped.
        uids = uids_to_take(box, account, last_uid, first_poll=True)
        if account.first_poll == "unseen":
            log.info(
                "account %s: first poll of %s: %d unread messages taken, %d read "
                "ones left alone (first_poll = unseen)",
                account.name,
                account.folder,
                len(uids),
                len(box.new_uids(last_uid)) - len(uids),
            )
        self._record_waiting(account, len(uids))
        known = (folder.uidvalidity, folder.uidnext - 1)
        return _Plan(_in_batches(uids, account.batch_size), known)

    def _know_folder(self, account: AccountConfig, uidvalidity: int, last: int) -> None:
        # Only now: a first poll cut short is a first poll again next time, and
        # the mail it had not reached is still unread on the server.
        with self.sessions.begin() as session:
            state = self._state(session, account)
            state.uidvalidity = uidvalidity
            state.last_uid = max(state.last_uid, last)

    def _nothing_new(self, box: Mailbox, account: AccountConfig) -> bool:
        # STATUS costs the same for ten messages or a hundred thousand, where
        # SELECT grows with the folder: an idle poll stops here.
        folder = box.status()
        with self.sessions() as session:
            known = session.execute(
                select(MailboxState.uidvalidity, MailboxState.last_uid).where(
                    MailboxState.account == account.name,
                    MailboxState.folder == account.folder,
                )
            ).first()
        if known is None:
            return False
        uidvalidity, last_uid = known
        return bool(
            uidvalidity == folder.uidvalidity and folder.uidnext - 1 <= last_uid
        )

    def _record_waiting(self, account: AccountConfig, count: int) -> None:
        with self.sessions.begin() as session:
            self._state(session, account).waiting = count

    def _last_uid(self, account: AccountConfig, uidvalidity: int) -> tuple[int, bool]:
        """The last UID handled (0 after a renumbering), and whether the folder
        is known: False until its first poll has gone through."""
        with self.sessions.begin() as session:
            state = self._state(session, account)
            if not state.uidvalidity:
                return state.last_uid, False
            if state.uidvalidity != uidvalidity:
                # The server renumbered the folder: a first poll again, by the
                # same rule (read mail the first one left alone stays alone);
                # de-duplication keeps what is taken twice from counting twice.
                log.warning(
                    "account %s: UIDVALIDITY changed %d -> %d, resynchronising",
                    account.name,
                    state.uidvalidity,
                    uidvalidity,
                )
                state.uidvalidity, state.last_uid = 0, 0
                return 0, False
            return state.last_uid, True

    def _handle_batch(
        self,
        box: Mailbox,
        account: AccountConfig,
        uids: list[int],
        outcomes: dict[str, int],
    ) -> None:
        fetched = [(f.raw, self._origin(account, f)) for f in box.fetch(uids)]
        for result in self.intake.receive_batch(fetched):
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        self.intake.make_durable()
        box.mark_handled(uids)

        with self.sessions.begin() as session:
            state = self._state(session, account)
            state.last_uid = max(state.last_uid, *uids)
            state.waiting = max(state.waiting - len(uids), 0)
            # A long backlog is progress, not silence: the health watch of
            # another worker must not call the account stale while it is read.
            state.last_success_at = self.clock.now()

    def _origin(self, account: AccountConfig, fetched: FetchedMail) -> Origin:
        return Origin(
            account=account.name,
            inbox_address=account.inbox_address,
            source=f"{account.name}:{account.folder}:{fetched.uid}",
            received_at=fetched.internal_date,
        )

    def _state(self, session: Session, account: AccountConfig) -> MailboxState:
        state = session.scalar(
            select(MailboxState).where(
                MailboxState.account == account.name,
                MailboxState.folder == account.folder,
            )
        )
        if state is None:
            state = MailboxState(account=account.name, folder=account.folder)
            session.add(state)
            session.flush()
        return state

    def _record_success(self, account: AccountConfig) -> None:
        with self.sessions.begin() as session:
            state = self._state(session, account)
            state.last_success_at = self.clock.now()
            state.last_error = ""

    def _record_error(self, account: AccountConfig, error: str) -> None:
        now: datetime = self.clock.now()
        with self.sessions.begin() as session:
            state = self._state(session, account)
            state.last_error, state.last_error_at = error[:2000], now
