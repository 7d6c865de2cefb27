"""The database schema: tickets, their messages and events, intake and outbox.

Every timestamp is timezone-aware UTC. SQLite drops the zone on the way back, so
``UtcDateTime`` puts it back; PostgreSQL keeps it natively.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Clipped(TypeDecorator[str]):
    """A String(n) that keeps the first n characters of a longer value.

    For text that comes from mail (a display name, an address, an import path):
    PostgreSQL refuses what is too long, where SQLite keeps it whole, and a
    complaint must not be lost over its sender's name.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)[: self.length]


class UtcDateTime(TypeDecorator[datetime]):
    """A DateTime that refuses naive values and always returns UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return moment.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TicketStatus(enum.StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    REJECTED = "rejected"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class InboundStatus(enum.StrEnum):
    PENDING = "pending"
    TICKET = "ticket"
    FOLLOW_UP = "follow_up"
    AUTOMATIC = "automatic"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    FORGED = "forged"


# Received mail set aside with its reason: `quarantine list` shows it and
# `quarantine retry` runs it again.
SET_ASIDE = (InboundStatus.QUARANTINED, InboundStatus.FORGED)


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def _enum(kind: type[enum.StrEnum]) -> Enum:
    return Enum(
        kind,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        length=20,
        validate_strings=True,
    )


class ReferenceCounter(Base):
    """The last sequence number handed out per year: references are gap-free."""

    __tablename__ = "reference_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus), index=True)
    unit_code: Mapped[str] = mapped_column(String(40), index=True)
    matched_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    complainant_email: Mapped[str] = mapped_column(Clipped(320), index=True)
    complainant_name: Mapped[str] = mapped_column(Clipped(200), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    account: Mapped[str] = mapped_column(String(64))
    inbox_address: Mapped[str] = mapped_column(String(320))
    identity_provided: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    # A reopen gives the ticket a new due time; the first answer (answered_at)
    # is still judged against the due time it had then.
    first_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The 1x24-hour watch: when the unit was reminded, and how far up the chain
    # (1 Kasubag Umum, 2 Sekcam, 3 Camat) the ticket has gone.
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id"
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="ticket", order_by="Event.id"
    )


class InboundMail(Base):
    """One received email, recorded before parsing; ends with a disposition."""

    __tablename__ = "inbound_mail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    raw_path: Mapped[str] = mapped_column(String(400))
    size: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Clipped(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    status: Mapped[InboundStatus] = mapped_column(_enum(InboundStatus), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))

    ticket: Mapped[Ticket | None] = relationship()


class Message(Base):
    """An email of a ticket, in or out, as the history shows it."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    kind: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(400))
    sender: Mapped[str] = mapped_column(Clipped(320))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"))
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    inbound: Mapped[InboundMail | None] = relationship()


class Event(Base):
    """A state change or action on a ticket, with who did it and when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(Clipped(320))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class OutboxItem(Base):
    """An outgoing email waiting for, or done with, SMTP delivery."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    message_row_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    kind: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(400), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    ticket: Mapped[Ticket | None] = relationship()
    message: Mapped[Message | None] = relationship()


class MailboxState(Base):
    """Where intake stands in one folder of one account."""

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("account", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # New messages the last poll saw on the server and had not imported when
    # it ended: non-zero after a poll that failed halfway.
    waiting: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MailboxIncident(Base):
    """A spell in which an account could not be polled; open while closed_at is None."""

    __tablename__ = "mailbox_incidents"
    __table_args__ = (Index("ix_mailbox_incidents_open", "account", "closed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Lease(Base):
    """A lock with an expiry, so that a dead holder does not block forever."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
