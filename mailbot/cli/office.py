"""Commands for the office's administration: check, upgrade, digest, sweep."""

from __future__ import annotations

import logging
import os
import stat
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailbot import db
from mailbot.app import open_mailbox
from mailbot.cli.base import (
    Context,
    cli,
    pass_context,
)
from mailbot.clock import SystemClock
from mailbot.config import Settings, require_secrets, secret_keys
from mailbot.digest import compute_digest, yesterday
from mailbot.digest_mail import render_digest
from mailbot.errors import MailbotError
from mailbot.health import ConnectionCheck, check_connections
from mailbot.intake import failure_reason
from mailbot.models import MailboxState
from mailbot.oauth import TokenSource
from mailbot.outbox import deliver_due
from mailbot.policy import Role
from mailbot.rendering import default_templates_dir
from mailbot.service import queue_daily_digest, sla_watch, smtp_policy
from mailbot.signing import MIN_KEY_BYTES

log = logging.getLogger(__name__)


@cli.command()
@click.option(
    "--connect", is_flag=True, help="Also log into every account and SMTP server."
)
@pass_context
def check(context: Context, connect: bool) -> None:
    """Validate the configuration and print what it sets up."""
    settings = context.settings
    click.echo(f"configuration: {settings.source}: valid")
    click.echo(f"database: {make_url(settings.storage.url)!r}")
    click.echo(f"accounts: {', '.join(a.name for a in settings.accounts) or 'none'}")
    smtp = settings.smtp
    outbox = (
        f"{smtp.host}:{smtp.port} (security: {smtp.security})"
        if smtp
        else f"file outbox in {settings.storage.data_dir / 'outbox'}"
    )
    click.echo(f"outgoing mail: {outbox}")
    click.echo(f"units: {', '.join(u.code for u in settings.units)}")
    for warning in _warnings(settings):
        click.echo(f"warning: {warning}")
    problems = _problems(settings)
    for problem in problems:
        click.echo(f"problem: {problem}")
    if connect:
        _check_connections(settings)
    if problems:
        raise SystemExit(1)


# Who the chain of the service standard needs, and what is lost without them.
_CHAIN: tuple[tuple[Role, str], ...] = (
    ("operator", "mailbox alerts reach only the Kasubag Umum"),
    ("kasubag_umum", "escalation passes this post over; mailbox alerts reach nobody"),
    ("sekcam", "escalation passes this post over"),
    ("camat", "escalation step 3 and the daily digest reach nobody"),
)


def _warnings(settings: Settings) -> list[str]:
    found = [
        f"no [[staff]] with role {role}: {purpose}"
        for role, purpose in _CHAIN
        if not settings.staff_with_role(role)
    ]
    found += [
        f"unit {unit.code} has no emails and no [[staff]]: nobody is told of its "
        "tickets"
        for unit in settings.units
        if not settings.unit_recipients(unit.code)
    ]
    found += [
        f"account {account.name} has no trusted_authserv_id: a staff address in "
        "From is enough to run commands"
        for account in settings.accounts
        if not (account.trusted_authserv_id or settings.security.trusted_authserv_id)
    ]
    data_dir = settings.storage.data_dir
    open_mode = _open_to_others(data_dir)
    if open_mode is not None:
        found.append(
            f"data_dir {data_dir} is open to other users (mode {open_mode:o}); it "
            "holds raw mail and KTP scans: chmod 700 it"
        )
    return found


def _open_to_others(data_dir: Path) -> int | None:
    # mailbot creates its folders for its own user; a folder made before it
    # (a git checkout's storage/, an operator's mkdir) keeps what it had.
    try:
        mode = stat.S_IMODE(data_dir.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def _problems(settings: Settings) -> list[str]:
    found = [
        f"{key}: environment variable {env} is not set"
        for key, env in secret_keys(settings)
        if not os.environ.get(env)
    ]
    key_env = settings.office.signing_key_env
    key = os.environ.get(key_env, "") if key_env else ""
    if 0 < len(key.encode()) < MIN_KEY_BYTES:
        found.append(
            f"office.signing_key_env: the key in {key_env} has {len(key.encode())} "
            f"bytes; it needs {MIN_KEY_BYTES} or more"
        )
    templates = default_templates_dir()
    if not (templates / "citizen" / "acknowledgement.txt.j2").is_file():
        found.append(f"templates: none found in {templates}")
    return found


@cli.command()
@pass_context
def upgrade(context: Context) -> None:
    """Create or migrate the database schema to this version."""
    engine = db.make_engine(context.settings.storage.url)
    before, after = db.upgrade(engine)
    click.echo(f"database schema: {before or 'empty'} -> {after}")


def _check_connections(settings: Settings) -> None:
    # Logging in needs no database: a check on a new machine must not make one.
    require_secrets(settings)
    token_sources: dict[str, TokenSource] = {}
    clock = SystemClock()
    database, last_uids = _database_check(settings)
    checks = check_connections(
        settings,
        lambda account: open_mailbox(account, token_sources, clock),
        last_uids if database.ok else None,
    )
    checks = [database, *checks]
    for item in checks:
        click.echo(f"{item.name}: {'ok' if item.ok else 'FAILED'}: {item.detail}")
    if not all(item.ok for item in checks):
        raise SystemExit(1)


def _database_check(
    settings: Settings,
) -> tuple[ConnectionCheck, dict[str, tuple[int, int]]]:
    """Whether the database answers, and where each account's polling stands.

    Reads only: a check creates no database and migrates no schema.
    """
    url = make_url(settings.storage.url)
    if url.get_backend_name() == "sqlite" and not (
        url.database and Path(url.database).is_file()
    ):
        return ConnectionCheck("database", True, "none yet; created on first use"), {}

    engine = db.make_engine(settings.storage.url)
    try:
        revision = db.current_revision(engine)
        if revision is None:
            detail = "empty; mailbot upgrade creates the schema"
            return ConnectionCheck("database", True, detail), {}
        with engine.connect() as connection:
            states = connection.execute(
                select(
                    MailboxState.account,
                    MailboxState.uidvalidity,
                    MailboxState.last_uid,
                )
            )
            last_uids = {name: (validity, uid) for name, validity, uid in states}
        return ConnectionCheck("database", True, f"schema {revision}"), last_uids
    except SQLAlchemyError as exc:
        return ConnectionCheck("database", False, failure_reason(exc)), {}
    finally:
        engine.dispose()


@cli.command()
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day reported on (default: yesterday in the office's time zone).",
)
@click.option("--print", "to_print", is_flag=True, help="Print the text part.")
@click.option("--html", is_flag=True, help="With --print: print the HTML part.")
@click.option("--send", "to_send", is_flag=True, help="Queue it and send it now.")
@pass_context
def digest(
    context: Context, day: datetime | None, to_print: bool, html: bool, to_send: bool
) -> None:
    """The Camat's daily digest, printed or sent."""
    if to_print == to_send:
        raise click.UsageError("give exactly one of --print and --send")
    app = context.existing_app
    now = app.clock.now()
    report_day = day.date() if day else yesterday(now, app.settings.office.timezone)
    if to_print:
        with app.sessions() as session:
            computed = compute_digest(session, app.settings, report_day, now)
        rendered = render_digest(app.renderer, computed, app.settings)
        click.echo(rendered.html if html else rendered.text, nl=False)
        return

    queued = queue_daily_digest(app, report_day, now)
    if not queued:
        raise MailbotError(f"digest of {report_day}: already queued or no recipients")
    transport = app.transport()
    try:
        report = deliver_due(app.sessions, transport, smtp_policy(app), app.clock)
    finally:
        transport.close()
    click.echo(f"digest of {report_day}: {queued} queued, {report.sent} sent")


@cli.command()
@pass_context
def sweep(context: Context) -> None:
    """Run the SLA sweep once: reminders and escalations that are due."""
    app = context.existing_app
    report = sla_watch(app).sweep(app.clock.now())
    click.echo(f"reminded {report.reminded}, escalated {report.escalated}")
