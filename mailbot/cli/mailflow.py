"""Commands that move mail: poll, send, run, import and the demo."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from mailbot.app import App
from mailbot.cli.base import (
    Context,
    cli,
    pass_context,
    service_logging,
)
from mailbot.importing import count_messages, read_messages
from mailbot.inbound import Origin, Outcome
from mailbot.intake import transactions
from mailbot.outbox import deliver_due
from mailbot.polling import PollReport
from mailbot.scheduler import StopFlag, run_forever, single_instance
from mailbot.service import Service, smtp_policy
from mailbot.views import list_tickets, show_ticket
from mailbot.watch import Watcher

log = logging.getLogger(__name__)


@cli.command()
@click.option("--once", is_flag=True, help="Poll each account once and exit.")
@pass_context
def poll(context: Context, once: bool) -> None:
    """Fetch new mail from every account into tickets."""
    service_logging()
    app = context.working_app
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
    app = context.working_app
    transport = app.transport()
    try:
        report = deliver_due(app.sessions, transport, smtp_policy(app), app.clock)
    finally:
        transport.close()
    click.echo(
        f"sent {report.sent}, deferred {report.deferred}, failed {report.failed}"
    )


@cli.command()
@pass_context
def run(context: Context) -> None:
    """Poll, send, sweep, watch and digest on a schedule until SIGTERM or SIGINT."""
    service_logging()
    app = context.working_app
    transport = app.transport()
    stop, wake = StopFlag(), threading.Event()
    service = Service(app, transport, stopping=lambda: stop.stopped, woken=wake.is_set)
    # A backlog's acknowledgements go out batch by batch, not after all of it.
    service.poller.after_batch = service.send
    watcher = Watcher(app.open_mailbox, wake)
    with _one_worker_guard(app):
        if app.settings.intake.idle:
            watcher.start(app.settings.accounts)
        try:
            run_forever(service.jobs(), stop, wake=wake)
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
    unreadable = 0
    # Read as much as intake takes in one transaction, and no more.
    batches = transactions(read_messages(list(paths)), lambda f: len(f.raw or b""))
    with click.progressbar(
        length=total, label="importing", file=sys.stderr, hidden=total < 100
    ) as progress:
        for batch in batches:
            for item in batch:
                if item.raw is None:
                    click.echo(f"cannot read {item.source}: {item.error}", err=True)
                    unreadable += 1
            readable = [
                (item.raw, Origin("import", "", item.source))
                for item in batch
                if item.raw is not None
            ]
            for result in app.intake.receive_batch(readable):
                counts[result.outcome] = counts.get(result.outcome, 0) + 1
            progress.update(len(batch))
    app.intake.make_durable()
    summary = ", ".join(f"{counts.get(o, 0)} {o}" for o in Outcome)
    imported = total - unreadable
    click.echo(f"imported {imported} message{'' if imported == 1 else 's'}: {summary}")
    if unreadable:
        files = "file" if unreadable == 1 else "files"
        click.echo(f"{unreadable} {files} could not be read; nothing of them kept")
        raise SystemExit(1)


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
