"""An office in one process for intake tests: settings, a movable clock, the app.

Real SQLite in a temporary directory and the real intake; only the clock (and,
where a test needs one, the transport) is a fake, through its Protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from mailbot.app import App
from mailbot.config import parse_settings
from mailbot.db import make_engine, upgrade
from mailbot.inbound import Origin
from mailbot.models import InboundMail

SIGNING_KEY = "test-signing-key-0123456789abcdef"
SIGNING_ENV = "MAILBOT_TEST_SIGNING_KEY"
START = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
FROM_CITIZEN = Origin("dinas", "porong@sidoarjokab.go.id", "dinas:INBOX:1")

# One unit without keywords or staff addresses: intake does all its steps but
# queues no unit notices, which keeps long loops fast.
LEAN_UNITS = """
[[units]]
code = "umum"
name = "Meja Umum"
fallback = true
"""


@dataclass
class MovableClock:
    """A clock the test moves by hand."""

    moment: datetime = START

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass
class CollectingTransport:
    """Keeps what the outbox hands over, as an SMTP server would accept it."""

    sent: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)

    def deliver(self, envelope_from: str, recipients: Sequence[str], raw: bytes) -> str:
        self.sent.append((envelope_from, tuple(recipients), raw))
        return f"250 2.0.0 accepted as {len(self.sent)}"

    def close(self) -> None:
        """Nothing to release."""


def build_app(
    tmp_path: Path, clock: MovableClock, extra: str = "", *, lean: bool = False
) -> App:
    """An app over a fresh database under ``tmp_path``; ``extra`` is more TOML."""
    data_dir = tmp_path / "storage"
    text = (
        f'[office]\nsigning_key_env = "{SIGNING_ENV}"\n'
        f'[storage]\ndata_dir = "{data_dir}"\n'
        f"{extra}\n{LEAN_UNITS if lean else ''}"
    )
    settings = parse_settings(text, "test")
    upgrade(make_engine(settings.storage.url))
    return App.build(settings, clock)


def inbound_count(app: App) -> int:
    """How many InboundMail rows there are."""
    with app.sessions() as session:
        return session.scalar(select(func.count(InboundMail.id))) or 0
