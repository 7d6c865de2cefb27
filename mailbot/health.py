"""The mailbox health watch: a silent intake outage is told to people at once.

Reads what polling records per account (``MailboxState``: last success, last
error). An account whose logins or polls have failed for ``[health]
alert_after_minutes``, or that has not polled successfully for ``stale_minutes``,
opens an incident (``MailboxIncident``) and the operator and the Kasubag Umum
get one alert; when the account polls again the incident is closed and they get
one recovery notice.
``check_connections`` logs into every account and the SMTP server on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.compose import Letter
from mailbot.config import AccountConfig, Settings
from mailbot.db import SessionFactory
from mailbot.errors import DeliveryError, MailboxError
from mailbot.imap import Mailbox
from mailbot.models import MailboxIncident, MailboxState
from mailbot.notices import queue_notice
from mailbot.outbox import Sender
from mailbot.polling import uids_to_take
from mailbot.rendering import Renderer
from mailbot.transport import SmtpTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthReport:
    """Accounts whose incident opened or closed in this check."""

    alerted: tuple[str, ...]
    recovered: tuple[str, ...]


def assess(
    state: MailboxState | None, now: datetime, stale: timedelta, *, grace: timedelta
) -> str:
    """Why the account is unwell, or "" when it is fine or not yet polled.

    A failing poll counts once polls have failed for ``grace`` since the last
    success: a server that drops one connection is not worth four letters.
    """
    if state is None:
        return ""
    failing_long = state.last_success_at is None or now - state.last_success_at >= grace
    if state.last_error and failing_long:
        return f"login atau pengambilan email gagal: {state.last_error}"
    if state.last_error:
        return ""
    # Never a success and no error: the first poll is still reading its first
    # batch, perhaps in another worker; a failure would have recorded an error.
    if state.last_success_at is None:
        return ""
    if now - state.last_success_at > stale:
        minutes = int(stale.total_seconds() // 60)
        return f"tidak ada pengambilan email yang berhasil selama {minutes} menit"
    return ""


class HealthWatch:
    """Opens and closes mailbox incidents and tells the office about them."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        renderer: Renderer,
        sender: Sender,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.renderer = renderer
        self.sender = sender
        self.stale = timedelta(minutes=settings.health.stale_minutes)
        self.grace = timedelta(minutes=settings.health.alert_after_minutes)

    def check(self, now: datetime) -> HealthReport:
        """Judge every account once; alert or announce recovery on a change."""
        alerted: list[str] = []
        recovered: list[str] = []
        for account in self.settings.accounts:
            with self.sessions.begin() as session:
                change = self._check_one(session, account, now)
            if change == "alert":
                alerted.append(account.name)
            elif change == "recovery":
                recovered.append(account.name)
        if alerted or recovered:
            log.info("health: %d alerted, %d recovered", len(alerted), len(recovered))
        return HealthReport(tuple(alerted), tuple(recovered))

    def _check_one(
        self, session: Session, account: AccountConfig, now: datetime
    ) -> str:
        state = session.scalar(
            select(MailboxState).where(
                MailboxState.account == account.name,
                MailboxState.folder == account.folder,
            )
        )
        problem = assess(state, now, self.stale, grace=self.grace)
        incident = open_incident(session, account.name)
        if problem and incident is None:
            # The outage began after the last poll that worked, not when the
            # grace ran out: the office reports how long intake really stopped.
            began = state.last_success_at if state and state.last_success_at else now
            incident = MailboxIncident(account=account.name, opened_at=began)
            incident.reason = problem[:2000]
            session.add(incident)
            self._tell(
                session,
                "mailbox_alert",
                account=account,
                incident=incident,
                state=state,
                now=now,
            )
            log.warning("account %s: mailbox incident opened", account.name)
            return "alert"
        if not problem and incident is not None:
            incident.closed_at = now
            self._tell(
                session,
                "mailbox_recovered",
                account=account,
                incident=incident,
                state=state,
                now=now,
            )
            log.info("account %s: mailbox incident closed", account.name)
            return "recovery"
        return ""

    def _tell(
        self,
        session: Session,
        kind: str,
        *,
        account: AccountConfig,
        incident: MailboxIncident,
        state: MailboxState | None,
        now: datetime,
    ) -> None:
        fields: dict[str, Any] = {
            "office": {"name": self.settings.office.name},
            "account": account.name,
            "address": account.inbox_address,
            "reason": incident.reason,
            "opened_at": incident.opened_at,
            "closed_at": incident.closed_at,
            "last_success_at": state.last_success_at if state else None,
            "now": now,
        }
        body = self.renderer.render(f"staff/{kind}", fields)
        recipients = self._recipients()
        if not recipients:
            log.warning("health: no [[staff]] with role operator or kasubag_umum")
        letter = Letter(kind, recipients, _subject(kind, account), body)
        queue_notice(session, letter, sender=self.sender, now=now)

    def _recipients(self) -> tuple[str, ...]:
        roles = ("operator", "kasubag_umum")
        return tuple(s.email for s in self.settings.staff if s.role in roles)


def _subject(kind: str, account: AccountConfig) -> str:
    if kind == "mailbox_alert":
        return f"[Peringatan] Kotak masuk {account.inbox_address} tidak terbaca"
    return f"[Pulih] Kotak masuk {account.inbox_address} terbaca kembali"


def open_incident(session: Session, account: str) -> MailboxIncident | None:
    """The account's incident that has not closed yet."""
    return session.scalar(
        select(MailboxIncident)
        .where(MailboxIncident.account == account)
        .where(MailboxIncident.closed_at.is_(None))
        .order_by(MailboxIncident.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of logging into one server."""

    name: str
    ok: bool
    detail: str


def check_connections(
    settings: Settings,
    open_mailbox: Callable[[AccountConfig], Mailbox],
    last_uids: dict[str, tuple[int, int]] | None,
) -> list[ConnectionCheck]:
    """Log into every account and the SMTP server; say what each answered.

    ``last_uids`` maps an account to (UIDVALIDITY, last UID handled), so the
    check can tell how many messages wait on the server to be imported; None
    when the database could not be read, and nothing is told of it.
    """
    checks = [_check_account(a, open_mailbox, last_uids) for a in settings.accounts]
    if settings.smtp is not None:
        checks.append(_check_smtp(SmtpTransport(settings.smtp)))
    return checks


def _check_account(
    account: AccountConfig,
    open_mailbox: Callable[[AccountConfig], Mailbox],
    last_uids: dict[str, tuple[int, int]] | None,
) -> ConnectionCheck:
    try:
        with open_mailbox(account) as box:
            folder = box.select()
            if last_uids is None:
                detail = f"logged in, {folder.exists} messages (database not read)"
                return ConnectionCheck(f"account {account.name}", True, detail)
            uidvalidity, last_uid = last_uids.get(account.name, (0, 0))
            if uidvalidity and uidvalidity != folder.uidvalidity:
                uidvalidity = last_uid = 0  # renumbered: a first poll again
            first = not uidvalidity
            waiting = len(uids_to_take(box, account, last_uid, first_poll=first))
    except MailboxError as exc:
        return ConnectionCheck(f"account {account.name}", False, str(exc))
    detail = f"logged in, {waiting} messages not yet imported"
    return ConnectionCheck(f"account {account.name}", True, detail)


def _check_smtp(transport: SmtpTransport) -> ConnectionCheck:
    config = transport.config
    name = f"smtp {config.host}:{config.port}"
    try:
        transport.verify()
    except DeliveryError as exc:
        return ConnectionCheck(name, False, exc.reply)
    return ConnectionCheck(name, True, "connected and greeted")
