"""Commands that read and repair records: tickets, route, quarantine, outbox."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

import click

from mailbot.cli.base import (
    Context,
    cli,
    line_of,
    local_time,
    pass_context,
    print_json,
)
from mailbot.errors import InvalidReferenceError, MailbotError
from mailbot.inbound import Outcome
from mailbot.models import InboundStatus, OutboxStatus, TicketStatus
from mailbot.outbox import failed_ids, retry
from mailbot.references import (
    LAST_SETTABLE,
    Reference,
    last_allocated,
    parse_reference,
    set_last_allocated,
)
from mailbot.rendering import history_detail
from mailbot.routing import Router
from mailbot.views import list_outbox, list_quarantine, list_tickets, show_ticket

log = logging.getLogger(__name__)

# A row ID as the databases store it (INTEGER: 32 bits on PostgreSQL): a
# larger number is a typo, not a row.
ROW_ID = click.IntRange(1, 2**31 - 1)


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
    codes = [u.code for u in context.settings.units]
    if unit is not None and unit not in codes:
        raise click.BadParameter(
            f"unknown unit {unit!r} (units: {', '.join(codes)})", param_hint="--unit"
        )
    with context.existing_app.sessions() as session:
        rows = list_tickets(
            session, status=TicketStatus(status) if status else None, unit=unit
        )
    if as_json:
        print_json(rows)
        return
    zone = context.settings.office.timezone
    for row in rows:
        click.echo(
            f"{row['reference']}  {row['status']:<11} {row['unit']:<12} "
            f"{local_time(row['received_at'], zone)}  {row['subject'][:60]}"
        )
    if not rows:
        click.echo("no tickets")


@tickets.command(name="show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_context
def tickets_show(context: Context, reference: str, as_json: bool) -> None:
    """One ticket with its messages and history."""
    prefix = context.settings.office.reference_prefix
    try:
        checked = str(parse_reference(reference, prefix))
    except InvalidReferenceError as exc:
        raise click.BadParameter(str(exc), param_hint="REFERENCE") from exc
    with context.existing_app.sessions() as session:
        view = show_ticket(session, checked)
    if view is None:
        raise MailbotError(f"no ticket {checked}")
    if as_json:
        print_json(view)
        return
    _print_ticket(view, context.settings.office.timezone)


def _print_ticket(view: dict[str, Any], zone: str) -> None:
    for key in ("reference", "status", "unit", "complainant_email", "subject"):
        click.echo(f"{key:>18}: {view[key]}")
    for key in ("received_at", "due_at", "answered_at"):
        if view[key]:
            click.echo(f"{key:>18}: {local_time(view[key], zone)}")
    # The history as staff read it in their letters: the Operator reads both.
    click.echo("history:")
    for event in view["history"]:
        when = local_time(event["at"], zone)
        click.echo(line_of("", when, event["actor"], event["action"]))
        click.echo(line_of("", "", history_detail(event["detail"], event["action"])))
    click.echo("messages:")
    for message in view["messages"]:
        when = local_time(message["at"], zone)
        cells = ["", when, message["direction"], message["kind"]]
        if message["direction"] == "out":
            cells.append(", ".join(message["to"]))
        else:
            # A follow-up may come from someone the complainant copied.
            cells.append(f"from {message['from']}")
        click.echo(line_of(*cells))


@cli.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_context
def route(context: Context, text: str, as_json: bool) -> None:
    """Which unit a complaint text goes to, and why."""
    decision = Router(context.settings.units).route("", text)
    if as_json:
        print_json(
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


@cli.command(name="references")
@click.option("--year", type=click.IntRange(2000, 9999), help="Default: this year.")
@click.option(
    "--last",
    "last",
    type=click.IntRange(1, LAST_SETTABLE),
    help="Mark this number as the last given out (after a restore).",
)
@click.option("--yes", is_flag=True, help="Do not ask before moving the counter.")
@pass_context
def references_(
    context: Context, year: int | None, last: int | None, yes: bool
) -> None:
    """Show the year's last reference; after a restore, move it past those sent."""
    app = context.existing_app
    office = app.settings.office
    if year is None:
        year = app.clock.now().astimezone(ZoneInfo(office.timezone)).year
    with app.sessions.begin() as session:
        seq = last_allocated(session, year)
        if last is not None and last != seq:
            if last < seq:
                # Refused before asking: there is nothing to confirm.
                set_last_allocated(session, year, last)
            # The counter never goes back: a typo here cannot be undone.
            if not yes:
                click.confirm(
                    f"{year}: mark {last} as the last reference given out (now "
                    f"{seq})? The numbers between are never given out.",
                    abort=True,
                )
            set_last_allocated(session, year, last)
            seq = last
    if not seq:
        click.echo(f"{year}: no reference given out yet")
        return
    given = Reference(office.reference_prefix, year, seq)
    following = Reference(office.reference_prefix, year, seq + 1)
    click.echo(f"{year}: last reference {given}; the next is {following}")


@cli.group()
def quarantine() -> None:
    """Messages set aside with their reason."""


@quarantine.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def quarantine_list(context: Context, as_json: bool) -> None:
    """Every quarantined message, and staff mail set aside as forged."""
    with context.existing_app.sessions() as session:
        rows = list_quarantine(session)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no quarantined messages")
    for row in rows:
        when = local_time(row["received_at"], context.settings.office.timezone)
        click.echo(line_of(row["id"], when, row["account"]))
        why = row["reason"][:200]
        if row["status"] == InboundStatus.FORGED:
            why = f"forged staff sender: {why}"
        click.echo(line_of("", why, row["raw_path"]))


@quarantine.command(name="retry")
@click.argument("inbound_id", type=ROW_ID)
@pass_context
def quarantine_retry(context: Context, inbound_id: int) -> None:
    """Run a quarantined or forged message through intake again."""
    result = context.existing_app.intake.retry(inbound_id)
    said = f"{result.outcome}: {result.reference or result.reason}"
    if result.outcome in (Outcome.QUARANTINED, Outcome.FORGED):
        said += f" (now set aside as {result.inbound_id})"
    click.echo(said)


@cli.group()
def outbox() -> None:
    """Outgoing mail and its delivery."""


@outbox.command(name="list")
@click.option("--status", type=click.Choice([s.value for s in OutboxStatus]))
@click.option("--json", "as_json", is_flag=True)
@pass_context
def outbox_list(context: Context, status: str | None, as_json: bool) -> None:
    """Every outgoing message with its status."""
    with context.existing_app.sessions() as session:
        rows = list_outbox(session, OutboxStatus(status) if status else None)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no outgoing mail")
    zone = context.settings.office.timezone
    for row in rows:
        # Sent or still due: the moment that matters for each.
        when = local_time(row["sent_at"] or row["next_attempt_at"], zone)
        cells = (row["reference"] or "-", row["kind"], row["status"], row["attempts"])
        click.echo(line_of(row["id"], when, *cells))
        click.echo(line_of("", ", ".join(row["recipients"]), row["last_reply"][:200]))


@outbox.command(name="retry")
@click.argument("item_ids", metavar="[ID]...", type=ROW_ID, nargs=-1)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
@pass_context
def outbox_retry(context: Context, item_ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed outgoing messages again, due now."""
    if not item_ids and not all_failed:
        raise click.UsageError("name the outbox IDs to retry, or give --failed")

    app = context.existing_app
    with app.sessions.begin() as session:
        if all_failed:
            item_ids = (*item_ids, *failed_ids(session))
        # All or none: one unknown ID leaves the others as they were.
        for item_id in dict.fromkeys(item_ids):
            retry(session, item_id, app.clock.now())
    for item_id in dict.fromkeys(item_ids):
        click.echo(f"outbox {item_id}: queued")
    if not item_ids:
        click.echo("no failed outgoing mail")
