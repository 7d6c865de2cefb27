"""The service's jobs: what ``mailbot run`` does on its schedule.

Poll, send, the SLA sweep, the mailbox health watch and the daily digest, each
a small method that the scheduler runs and guards. A poll that brought mail is
followed at once by a send, so a citizen's acknowledgement leaves within the
poll interval rather than waiting for the next send turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time
from time import monotonic
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.digest import compute_digest, in_service_by, recipients, yesterday
from mailbot.digest_mail import queue_digest, render_digest
from mailbot.errors import ConfigError
from mailbot.escalation import SlaWatch
from mailbot.health import HealthWatch
from mailbot.models import OutboxItem
from mailbot.outbox import DeliveryReport, Sender, deliver_due
from mailbot.transport import Transport

log = logging.getLogger(__name__)

Job = tuple[str, float, Callable[[], object]]
# The digest job looks at the clock this often; it sends once the day's time
# has passed, so a service started late still sends that day's digest. (The
# time-zone form of schedule's .at() would also pull in pytz.)
DIGEST_CHECK_SECONDS = 60.0
# How long a send run goes on while new mail waits to be taken in.
SEND_SLICE_SECONDS = 5.0
_MAIL_OUTCOMES = ("ticket", "follow_up", "staff")


def smtp_policy(app: App) -> SmtpConfig:
    """The retry policy of delivery; moot for the file outbox, which never fails."""
    if app.settings.smtp is not None:
        return app.settings.smtp
    return SmtpConfig(host="localhost", port=25, security="none")


def sla_watch(app: App) -> SlaWatch:
    """The SLA sweep over this app's database."""
    sender = Sender.of_office(app.settings)
    return SlaWatch(app.settings, app.sessions, app.signer, app.renderer, sender)


def health_watch(app: App) -> HealthWatch:
    """The mailbox health watch over this app's database."""
    sender = Sender.of_office(app.settings)
    return HealthWatch(app.settings, app.sessions, app.renderer, sender)


class Service:
    """The jobs of one ``mailbot run`` process."""

    def __init__(
        self,
        app: App,
        transport: Transport,
        *,
        stopping: Callable[[], bool] = lambda: False,
        woken: Callable[[], bool] = lambda: False,
    ) -> None:
        self.app = app
        self.transport = transport
        # Asked between letters: a service stopping, or new mail to take in.
        self.stopping, self.woken = stopping, woken
        self.gave_way = False
        self.poller = app.poller()
        self.sla = sla_watch(app)
        self.health = health_watch(app)

    def jobs(self) -> list[Job]:
        """(name, every_seconds, job) for the scheduler."""
        settings = self.app.settings
        jobs: list[Job] = [
            ("poll", settings.intake.poll_interval_seconds, self.poll),
            ("send", settings.intake.send_interval_seconds, self.send),
            ("sla", settings.sla.sweep_interval_seconds, self.sweep),
            ("health", settings.health.check_interval_seconds, self.check_health),
        ]
        if not settings.digest.enabled:
            return jobs
        try:
            recipients(settings)
        except ConfigError as exc:
            log.warning("digest: not scheduled: %s", exc)
            return jobs
        jobs.append(("digest", DIGEST_CHECK_SECONDS, self.digest_if_due))
        return jobs

    def poll(self) -> None:
        """Poll every account; deliver at once if that made mail, or if a send
        run gave way to this poll."""
        reports = self.poller.poll_all(self.app.settings.accounts)
        made = sum(r.outcomes.get(o, 0) for r in reports for o in _MAIL_OUTCOMES)
        if made or self.gave_way:
            self.send()

    def send(self) -> DeliveryReport:
        """Deliver the outbox rows that are due.

        Stops between letters when the service is stopping, or when new mail
        waits and the run has had its SEND_SLICE_SECONDS: in a flood, mail
        arrives all the time, and letters must still go out.
        """
        app = self.app
        started = monotonic()
        self.gave_way = False

        def interrupted() -> bool:
            if self.stopping():
                return True
            # Another worker's flags wake us too: the rest goes after the poll.
            self.gave_way = self.woken() and monotonic() - started >= SEND_SLICE_SECONDS
            return self.gave_way

        return deliver_due(
            app.sessions,
            self.transport,
            smtp_policy(app),
            app.clock,
            interrupted=interrupted,
        )

    def sweep(self) -> None:
        """Remind and escalate; deliver at once what that queued."""
        report = self.sla.sweep(self.app.clock.now())
        if report.reminded or report.escalated:
            self.send()

    def check_health(self) -> None:
        """Judge the mailboxes; an alert or recovery notice leaves at once."""
        report = self.health.check(self.app.clock.now())
        if report.alerted or report.recovered:
            self.send()

    def digest_if_due(self) -> None:
        """Queue and send yesterday's digest once today's digest time has come."""
        settings = self.app.settings
        now = self.app.clock.now()
        if not _past(now, settings.digest.time, settings.office.timezone):
            return
        day = yesterday(now, settings.office.timezone)
        if digest_queued(self.app, day.strftime("%Y%m%d")):
            return
        with self.app.sessions() as session:
            if not in_service_by(session, settings, day):
                return
        if queue_daily_digest(self.app, day, now):
            self.send()


def _past(now: datetime, at: str, timezone: str) -> bool:
    local = now.astimezone(ZoneInfo(timezone))
    return local.time() >= time.fromisoformat(at)


def digest_queued(app: App, day_key: str) -> bool:
    """Whether the digest of this day (``YYYYMMDD``) is in the outbox already."""
    with app.sessions() as session:
        found = session.scalar(
            select(OutboxItem.id)
            .where(OutboxItem.kind == "digest")
            .where(OutboxItem.message_id.startswith(f"digest.{day_key}."))
            .limit(1)
        )
    return found is not None


def queue_daily_digest(app: App, day: date, now: datetime) -> int:
    """Compute, render and queue the digest of ``day``; the rows queued."""
    settings = app.settings
    try:
        to = recipients(settings)
    except ConfigError as exc:
        log.warning("digest: not sent: %s", exc)
        return 0
    with app.sessions.begin() as session:
        digest = compute_digest(session, settings, day, now)
        rendered = render_digest(app.renderer, digest, settings)
        items = queue_digest(session, rendered, digest, settings, to=to, now=now)
    return len(items)
