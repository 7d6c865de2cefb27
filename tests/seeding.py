"""Settings and tickets for the SLA, health and digest tests, built directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from mailbot.config import Settings, parse_settings
from mailbot.models import Ticket
from mailbot.tickets import NewTicket, open_ticket

CHAIN_STAFF_TOML = """
[[staff]]
email = "operator@porong.example.go.id"
name = "Operator CS"
role = "operator"

[[staff]]
email = "kasubag@porong.example.go.id"
name = "Kasubag Umum"
role = "kasubag_umum"

[[staff]]
email = "sekcam@porong.example.go.id"
name = "Sekretaris Camat"
role = "sekcam"

[[staff]]
email = "camat@porong.example.go.id"
name = "Camat Porong"
role = "camat"

[[staff]]
email = "ekbang.staf@porong.example.go.id"
name = "Staf Ekbang"
role = "unit"
unit = "ekbang"
"""


@dataclass
class FixedClock:
    """A clock that tells the time it is set to."""

    at: datetime

    def now(self) -> datetime:
        return self.at


def make_settings(data_dir: Path, extra: str = "") -> Settings:
    """The Porong units, the whole chain of staff, storage in ``data_dir``."""
    text = f'[storage]\ndata_dir = "{data_dir}"\n{extra}\n{CHAIN_STAFF_TOML}'
    return parse_settings(text, "test")


def add_ticket(
    session: Session,
    settings: Settings,
    received_at: datetime,
    *,
    unit: str = "ekbang",
    subject: str = "Jalan rusak",
    name: str = "Budi Santoso",
    identity: bool = True,
) -> Ticket:
    """Open a ticket as intake would, without mail."""
    new = NewTicket(
        complainant_email="warga@example.com",
        complainant_name=name,
        subject=subject,
        account="dinas",
        inbox_address="porong@sidoarjokab.go.id",
        unit_code=unit,
        matched_keywords=(),
        identity_provided=identity,
        received_at=received_at,
    )
    office = settings.office
    return open_ticket(
        session,
        new,
        prefix=office.reference_prefix,
        response_hours=office.response_hours,
        timezone=office.timezone,
        sla=settings.sla,
    )
