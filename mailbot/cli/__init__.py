"""The command line: ``mailbot [--config PATH] COMMAND``.

The CLI is one of the three places that catch errors: a mailbot error becomes a
one-line message and exit status 1 (2 for a configuration error). The commands
live in the modules of this package by what they are for.
"""

from __future__ import annotations

import os
import sys

import click
from sqlalchemy.exc import DBAPIError

from mailbot.cli import mailflow, office, records
from mailbot.cli.base import cli
from mailbot.errors import ConfigError, MailbotError

__all__ = ["cli", "mailflow", "main", "office", "records"]


def main() -> None:
    """Entry point: run the CLI, turning mailbot errors into one-line messages."""
    # Everything mailbot writes (raw mail, database, attachments, outbox) holds
    # citizens' personal data: for its own user only, whoever runs it by hand.
    os.umask(0o077)
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
    except OSError as exc:
        # A data folder that cannot be created or written, a disk that is full.
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: storage: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except DBAPIError as exc:
        # The driver's own words say enough (read-only file, refused connection);
        # the first line says it, the rest is psycopg's hint.
        words = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        click.echo(f"error: database: {words[0]}", err=True)
        sys.exit(1)
