"""A seeded day for the digest: Rabu, 2 Desember 2026, reported at 07:00 WIB next day.

``python tests/digest_scenario.py`` writes the rendered digest to examples/digest/.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.config import Settings
from mailbot.models import (
    Event,
    InboundMail,
    InboundStatus,
    MailboxIncident,
    MailboxState,
    OutboxItem,
    OutboxStatus,
    Ticket,
    TicketStatus,
)
from mailbot.tickets import change_status, record_event

sys.path.insert(0, str(Path(__file__).parent))
from seeding import FixedClock, add_ticket, make_settings

WIB = ZoneInfo("Asia/Jakarta")
DAY = datetime(2026, 12, 2, tzinfo=WIB).date()
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=WIB)
ACCOUNTS = """
[[accounts]]
name = "dinas"
host = "imap.sidoarjokab.go.id"
port = 993
username = "porong@sidoarjokab.go.id"
password_env = "PORONG_IMAP_PASSWORD"

[[accounts]]
name = "gmail"
host = "imap.gmail.com"
port = 993
username = "kecamatanporong@gmail.com"
auth = "oauth2"
oauth2_token_url = "https://oauth2.googleapis.com/token"
oauth2_client_id = "porong-client"
oauth2_refresh_token_env = "PORONG_GMAIL_REFRESH_TOKEN"
"""


def wib(day: int, hour: int, minute: int = 0) -> datetime:
    month = 11 if day > 3 else 12
    return datetime(2026, month, day, hour, minute, tzinfo=WIB)


def scenario_settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, ACCOUNTS)


def _answer(ticket: Ticket, at: datetime) -> None:
    ticket.status = TicketStatus.ANSWERED
    ticket.answered_at = at


def seed(session: Session, settings: Settings) -> None:
    """Ten tickets, intake records, a failed acknowledgement and mailbox state."""
    s = settings
    t1 = add_ticket(session, s, wib(2, 8), subject="Lampu jalan mati")
    _answer(t1, wib(2, 10, 30))
    add_ticket(session, s, wib(2, 9), unit="pemerintahan", subject="Sertifikat")
    t3 = add_ticket(
        session,
        s,
        wib(2, 13),
        subject="Selokan mampet",
        name="Siti Aminah",
        identity=False,
    )
    t4 = add_ticket(session, s, wib(2, 15), unit="umum", subject="Iklan")
    change_status(session, t4, TicketStatus.REJECTED, at=wib(2, 16))

    t5 = add_ticket(session, s, wib(30, 10), subject="Banjir di Gedang")
    _answer(t5, wib(2, 11))
    t6 = add_ticket(session, s, wib(1, 6), unit="pemerintahan", subject="Petok D")
    _answer(t6, wib(2, 5))
    t7 = add_ticket(
        session,
        s,
        wib(29, 9),
        subject="Jalan rusak, NIK 3515012305878901",
        name="Ahmad Fauzi",
    )
    t7.escalation_step = 2
    t8 = add_ticket(
        session,
        s,
        wib(1, 20),
        unit="umum",
        subject="Petugas tidak ramah",
        identity=False,
    )
    t8.escalation_step = 1
    t9 = add_ticket(session, s, wib(30, 8), subject="Sampah menumpuk")
    _answer(t9, wib(1, 7))
    # Reopened by its complainant and answered again on the reported day.
    record_event(session, t9, "answered", "final response", at=wib(1, 7))
    record_event(session, t9, "reopened", "complainant replied", at=wib(2, 8))
    record_event(session, t9, "answered", "final response", at=wib(2, 14))
    add_ticket(session, s, wib(3, 0, 30), unit="umum", subject="Jam pelayanan")

    _intake(session, t3)
    _mailboxes(session)


def _intake(session: Session, unacknowledged: Ticket) -> None:
    for n, at in enumerate([wib(2, 4), wib(2, 18), wib(1, 12)]):
        session.add(
            InboundMail(
                dedupe_key=f"auto-{n}",
                sha256="0" * 64,
                raw_path=f"auto-{n}.eml",
                size=900,
                source="dinas:INBOX:1",
                received_at=at,
                status=InboundStatus.AUTOMATIC,
                reason="auto-replied",
            )
        )
    session.add(
        Event(
            ticket_id=unacknowledged.id,
            at=wib(2, 14),
            actor="mailbot",
            action="forged_sender",
            detail="From: a staff address, SPF fail",
        )
    )
    session.add(
        OutboxItem(
            ticket_id=unacknowledged.id,
            kind="acknowledgement",
            message_id="ack-t3@sidoarjokab.go.id",
            envelope_from="porong@x",
            recipients=["siti@example.com"],
            raw=b"",
            status=OutboxStatus.FAILED,
            attempts=1,
            next_attempt_at=wib(2, 13),
            created_at=wib(2, 13),
            last_reply="550 5.1.1 mailbox unavailable",
        )
    )


def _mailboxes(session: Session) -> None:
    session.add(
        MailboxState(
            account="dinas",
            folder="INBOX",
            uidvalidity=7,
            last_uid=4411,
            last_success_at=wib(3, 6, 59),
        )
    )
    session.add(
        MailboxState(
            account="gmail",
            folder="INBOX",
            uidvalidity=3,
            last_uid=982,
            last_success_at=wib(2, 21, 58),
            last_error="account gmail: log in failed: token revoked",
            last_error_at=wib(3, 6, 59),
            waiting=12,
        )
    )
    session.add(
        MailboxIncident(account="gmail", opened_at=wib(2, 22, 0), reason="token")
    )


def build(data_dir: Path) -> App:
    """An app over a fresh database holding the scenario."""
    app = App.build(scenario_settings(data_dir), FixedClock(NOW))
    with app.sessions.begin() as session:
        seed(session, app.settings)
    return app


def main() -> None:
    """Write examples/digest/digest.{txt,html} from the scenario."""
    import tempfile  # noqa: PLC0415

    from mailbot.digest import compute_digest  # noqa: PLC0415
    from mailbot.digest_mail import render_digest  # noqa: PLC0415

    target = Path(__file__).resolve().parents[1] / "examples" / "digest"
    with tempfile.TemporaryDirectory() as scratch:
        app = build(Path(scratch))
        with app.sessions() as session:
            digest = compute_digest(session, app.settings, DAY, NOW)
        rendered = render_digest(app.renderer, digest, app.settings)
    (target / "digest.txt").write_text(rendered.text, encoding="utf-8")
    (target / "digest.html").write_text(rendered.html, encoding="utf-8")


if __name__ == "__main__":
    main()
