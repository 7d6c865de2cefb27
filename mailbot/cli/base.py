"""The root of the command line: options, logging, and what every command gets."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from mailbot.app import App
from mailbot.config import Settings, load_settings, require_secrets
from mailbot.parsing import quiet_library_logging
from mailbot.redaction import install_masking
from mailbot.rendering import INDONESIAN_ZONES

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

    @property
    def existing_app(self) -> App:
        """The app for commands that only read: the database must exist."""
        if self._app is None:
            self._app = App.build(self.settings, create=False)
        return self._app

    @property
    def working_app(self) -> App:
        """The app for commands that log in or send: every secret must be set."""
        require_secrets(self.settings)
        return self.app


pass_context = click.make_pass_decorator(Context)


def service_logging() -> None:
    # Pollers and the service log every ticket event; one-off commands only
    # warnings unless -v is given.
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))


def print_json(value: Any) -> None:
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


def local_time(iso: str, zone: str) -> str:
    """A stored UTC time as the office reads it: ``2026-11-02 07:45 WIB``."""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    name = INDONESIAN_ZONES.get(zone) or moment.tzname() or zone
    return f"{moment:%Y-%m-%d %H:%M} {name}"


def line_of(*cells: object) -> str:
    """Cells of a plain-text listing, two spaces apart."""
    return "  ".join(str(cell) for cell in cells)
