"""repair databases made by early builds of 0001

Revision 0001 was changed three times on 2026-12-03 after databases had been
made with it: mailbox_incidents, tickets.reminded_at and escalation_step, and
mailbox_state.waiting came later. A database at 0001 may lack any of them; this
revision adds what is missing and leaves the rest. A shipped revision is never
edited again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("mailbox_incidents"):
        op.create_table(
            "mailbox_incidents",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("account", sa.String(length=64), nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            "ix_mailbox_incidents_open",
            "mailbox_incidents",
            ["account", "closed_at"],
            unique=False,
        )
    _add_missing(
        inspector,
        "tickets",
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_step", sa.Integer(), server_default="0", nullable=False),
    )
    _add_missing(
        inspector,
        "mailbox_state",
        sa.Column("waiting", sa.Integer(), server_default="0", nullable=False),
    )


def _add_missing(
    inspector: sa.Inspector, table: str, *columns: sa.Column[object]
) -> None:
    present = {column["name"] for column in inspector.get_columns(table)}
    for column in columns:
        if column.name not in present:
            op.add_column(table, column)


def downgrade() -> None:
    # Nothing to take back: what this revision adds belongs to 0001 as shipped.
    pass
