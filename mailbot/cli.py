"""The command line: ``mailbot [--config PATH] COMMAND``.

The CLI is one of the three places that catch errors: a mailbot error becomes a
one-line message and exit status 1 (2 for a configuration error).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mailbot import db
from mailbot.app import App
from mailbot.config import Settings, SmtpConfig, load_settings
from mailbot.digest import compute_digest, yesterday
from mailbot.digest_mail import render_digest
from mailbot.errors import ConfigError, MailbotError
from mailbot.health import check_connections
from mailbot.importing import count_messages, read_messages
from mailbot.inbound import Origin, Outcome
from mailbot.models import MailboxState, OutboxStatus, TicketStatus
from mailbot.outbox import deliver_due, retry
from mailbot.parsing import quiet_library_logging
from mailbot.polling import PollReport
from mailbot.redaction import install_masking
from mailbot.references import parse_reference
from mailbot.routing import Router
from mailbot.scheduler import StopFlag, run_forever, single_instance
from mailbot.service import Service, queue_daily_digest, sla_watch
from mailbot.views import list_outbox, list_quarantine, list_tickets, show_ticket
from mailbot.watch import Watcher

log = logging.getLogger(__name__)


class Context:
    """What every command gets: the settings, and the app built on demand."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None
        self._app: App | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = App.build(self.settings)
        return self._app


pass_context = click.make_pass_decorator(Context)


def _service_logging() -> None:
    # Pollers and the service log every ticket event; one-off commands only
    # warnings unless -v is given.
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group()
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file (else $MAILBOT_CONFIG, ./mailbot.toml, embedded defaults).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
@click.version_option(package_name="mailbot")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """Email helpdesk for the complaint service of Kecamatan Porong."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_library_logging()
    # Alembic announces its SQLite dialect on every open; db logs what it migrates.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    install_masking()
    ctx.obj = Context(config)


@cli.command()
@click.option(
    "--connect", is_flag=True, help="Also log into every account and SMTP server."
)
@pass_context
def check(context: Context, connect: bool) -> None:
    """Validate the configuration and print what it sets up."""
    settings = context.settings
    click.echo(f"configuration: {settings.source}: valid")
    click.echo(f"database: {db.make_engine(settings.storage.url).url!r}")
    click.echo(f"accounts: {', '.join(a.name for a in settings.accounts) or 'none'}")
    smtp = settings.smtp
    outbox = f"{smtp.host}:{smtp.port} ({smtp.security})" if smtp else "file outbox"
    click.echo(f"outgoing mail: {outbox}")
    click.echo(f"units: {', '.join(u.code for u in settings.units)}")
    if connect:
        _check_connections(context.app)


@cli.command()
@pass_context
def upgrade(context: Context) -> None:
    """Create or migrate the database schema to this version."""
    engine = db.make_engine(context.settings.storage.url)
    before, after = db.upgrade(engine)
    click.echo(f"database schema: {before or 'empty'} -> {after}")


@cli.command()
@click.option("--once", is_flag=True, help="Poll each account once and exit.")
@pass_context
def poll(context: Context, once: bool) -> None:
    """Fetch new mail from every account into tickets."""
    _service_logging()
    app = context.app
    poller = app.poller()
    if once:
        reports = poller.poll_all(app.settings.accounts)
        for report in reports:
            click.echo(_poll_line(report))
        if any(r.error for r in reports):
            raise SystemExit(1)
        return
    jobs = [
        (
            "poll",
            app.settings.intake.poll_interval_seconds,
            lambda: poller.poll_all(app.settings.accounts),
        )
    ]
    run_forever(jobs, StopFlag())


def _poll_line(report: PollReport) -> str:
    if report.error:
        return f"{report.account}: error: {report.error}"
    if report.skipped:
        return f"{report.account}: skipped, another poller holds it"
    parts = ", ".join(f"{n} {name}" for name, n in sorted(report.outcomes.items()))
    line = f"{report.account}: {report.fetched} fetched"
    return line + (f" ({parts})" if parts else "")


@cli.command()
@pass_context
def send(context: Context) -> None:
    """Deliver the outbox messages that are due."""
    app = context.app
    transport = app.transport()
    try:
        report = deliver_due(app.sessions, transport, _smtp_policy(app), app.clock)
    finally:
        transport.close()
    click.echo(
        f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}"
    )


def _smtp_policy(app: App) -> SmtpConfig:
    # The file outbox never fails temporarily; the retry policy is moot there.
    if app.settings.smtp is not None:
        return app.settings.smtp
    return SmtpConfig(host="localhost", port=25, security="none")


@cli.command()
@pass_context
def run(context: Context) -> None:
    """Poll, send, sweep, watch and digest on a schedule until SIGTERM or SIGINT."""
    _service_logging()
    app = context.app
    transport = app.transport()
    service = Service(app, transport)
    # A backlog's acknowledgements go out batch by batch, not after all of it.
    service.poller.after_batch = service.send
    wake = threading.Event()
    watcher = Watcher(app.open_mailbox, wake)
    with _one_worker_guard(app):
        if app.settings.intake.idle:
            watcher.start(app.settings.accounts)
        try:
            run_forever(service.jobs(), StopFlag(), wake=wake)
        finally:
            watcher.stop()
            transport.close()


def _one_worker_guard(app: App) -> AbstractContextManager[None]:
    # SQLite has one writer: one `run` per data folder. On PostgreSQL several
    # workers share the database, and may share the data folder too.
    if make_url(app.settings.storage.url).get_backend_name() == "sqlite":
        return single_instance(app.settings.storage.data_dir)
    return nullcontext()


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def import_(context: Context, paths: tuple[Path, ...]) -> None:
    """Take .eml files, Maildir folders or mbox files in as if received."""
    app = context.app
    total = count_messages(list(paths))
    counts: dict[str, int] = {}
    with click.progressbar(
        read_messages(list(paths)),
        length=total,
        label="importing",
        file=sys.stderr,
        hidden=total < 100,
    ) as messages:
        for item in messages:
            origin = Origin("import", "", item.source)
            result = app.intake.receive(item.raw, origin)
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
    app.intake.make_durable()
    summary = ", ".join(f"{counts.get(o, 0)} {o}" for o in Outcome)
    click.echo(f"imported {total} messages: {summary}")


@cli.group()
def tickets() -> None:
    """List and show tickets."""


@tickets.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in TicketStatus]))
@click.option("--unit", help="Unit code.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_context
def tickets_list(
    context: Context, status: str | None, unit: str | None, as_json: bool
) -> None:
    """Tickets, oldest first."""
    with context.app.sessions() as session:
        rows = list_tickets(
            session, status=TicketStatus(status) if status else None, unit=unit
        )
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['reference']}  {row['status']:<11} {row['unit']:<12} "
            f"{row['received_at'][:16]}  {row['subject'][:60]}"
        )


@tickets.command(name="show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_context
def tickets_show(context: Context, reference: str, as_json: bool) -> None:
    """One ticket with its messages and history."""
    prefix = context.settings.office.reference_prefix
    checked = str(parse_reference(reference, prefix))
    with context.app.sessions() as session:
        view = show_ticket(session, checked)
    if view is None:
        raise MailbotError(f"no ticket {checked}")
    if as_json:
        _print_json(view)
        return
    _print_ticket(view)


def _row(*cells: object) -> str:
    return "  ".join(str(cell) for cell in cells)


def _print_ticket(view: dict[str, Any]) -> None:
    for key in (
        "reference",
        "status",
        "unit",
        "complainant_email",
        "subject",
        "received_at",
        "due_at",
    ):
        click.echo(f"{key:>18}: {view[key]}")
    click.echo("history:")
    for event in view["history"]:
        click.echo(_row("", event["at"][:19], event["actor"], event["action"]))
        click.echo(_row("", "", event["detail"]))
    click.echo("messages:")
    for message in view["messages"]:
        click.echo(_row("", message["at"][:19], message["direction"], message["kind"]))


@cli.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_context
def route(context: Context, text: str, as_json: bool) -> None:
    """Which unit a complaint text goes to, and why."""
    decision = Router(context.settings.units).route("", text)
    if as_json:
        _print_json(
            {
                "unit": decision.unit,
                "matched": list(decision.matched),
                "score": decision.score,
                "fallback": decision.fallback,
            }
        )
        return
    unit = context.settings.unit(decision.unit)
    why = (
        ", ".join(decision.matched)
        if decision.matched
        else "no keyword matched: fallback"
    )
    click.echo(f"{unit.code} ({unit.name}): {why}")


@cli.group()
def quarantine() -> None:
    """Messages set aside with their reason."""


@quarantine.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def quarantine_list(context: Context, as_json: bool) -> None:
    """Every quarantined message."""
    with context.app.sessions() as session:
        rows = list_quarantine(session)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(_row(row["id"], row["received_at"][:19], row["account"]))
        click.echo(_row("", row["reason"][:200], row["raw_path"]))


@quarantine.command(name="retry")
@click.argument("inbound_id", type=int)
@pass_context
def quarantine_retry(context: Context, inbound_id: int) -> None:
    """Run a quarantined message through intake again."""
    result = context.app.intake.retry(inbound_id)
    click.echo(f"{result.outcome}: {result.reference or result.reason}")


@cli.group()
def outbox() -> None:
    """Outgoing mail and its delivery."""


@outbox.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in OutboxStatus]))
@click.option("--json", "as_json", is_flag=True)
@pass_context
def outbox_list(context: Context, status: str | None, as_json: bool) -> None:
    """Every outgoing message with its status."""
    with context.app.sessions() as session:
        rows = list_outbox(session, OutboxStatus(status) if status else None)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        cells = (row["reference"] or "-", row["kind"], row["status"], row["attempts"])
        click.echo(_row(row["id"], *cells, row["last_reply"][:60]))


@outbox.command(name="retry")
@click.argument("item_id", type=int)
@pass_context
def outbox_retry(context: Context, item_id: int) -> None:
    """Queue a failed outgoing message again, due now."""
    app = context.app
    with app.sessions.begin() as session:
        retry(session, item_id, app.clock.now())
    click.echo(f"outbox {item_id}: queued")


@cli.command()
@click.argument(
    "inbox",
    type=click.Path(path_type=Path, exists=True),
    default=Path("examples/inbox"),
)
@pass_context
def demo(context: Context, inbox: Path) -> None:
    """Import the sample inbox, send the outbox, and show what happened."""
    ctx = click.get_current_context()
    ctx.invoke(import_, paths=(inbox,))
    ctx.invoke(send)
    app = context.app
    with app.sessions() as session:
        rows = list_tickets(session)
        for row in rows:
            view = show_ticket(session, row["reference"])
            assert view is not None
            ack = next(
                (o for o in view["outbox"] if o["kind"] == "acknowledgement"), None
            )
            where = (
                ack["last_reply"].removeprefix("written to ")
                if ack
                else "(no acknowledgement)"
            )
            click.echo(f"{row['reference']}  {row['unit']:<12} {where}")


def _check_connections(app: App) -> None:
    with app.sessions() as session:
        states = session.execute(
            select(
                MailboxState.account, MailboxState.uidvalidity, MailboxState.last_uid
            )
        )
        last_uids = {name: (validity, uid) for name, validity, uid in states}
    checks = check_connections(app.settings, app.open_mailbox, last_uids)
    for item in checks:
        click.echo(f"{item.name}: {'ok' if item.ok else 'FAILED'}: {item.detail}")
    if not all(item.ok for item in checks):
        raise SystemExit(1)


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
    app = context.app
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
        report = deliver_due(app.sessions, transport, _smtp_policy(app), app.clock)
    finally:
        transport.close()
    click.echo(f"digest of {report_day}: {queued} queued, {report.sent} sent")


@cli.command()
@pass_context
def sweep(context: Context) -> None:
    """Run the SLA sweep once: reminders and escalations that are due."""
    app = context.app
    report = sla_watch(app).sweep(app.clock.now())
    click.echo(f"reminded {report.reminded}, escalated {report.escalated}")


def main() -> None:
    """Entry point: run the CLI, turning mailbot errors into one-line messages."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except MailbotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
