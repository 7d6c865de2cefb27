"""How a complainant's reply continues a closed ticket: thanks, reopen, new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailbot.conversation import Continuation, continuation
from mailbot.models import Ticket, TicketStatus

NOW = datetime(2026, 8, 12, 3, 0, tzinfo=UTC)


def _answered(email: str, name: str) -> Ticket:
    return Ticket(
        status=TicketStatus.ANSWERED,
        complainant_email=email,
        complainant_name=name,
        answered_at=NOW - timedelta(hours=2),
        updated_at=NOW - timedelta(hours=2),
        events=[],
    )


@pytest.mark.parametrize(
    ("email", "name", "text", "expected"),
    [
        # Trial 30: no display name, signed with the name the address spells.
        (
            "siti.aminah@yahoo.co.id",
            "",
            "Matur nuwun sanget, Pak.\n\nSiti Aminah",
            "thanks",
        ),
        ("siti_aminah88@gmail.com", "", "Terima kasih.\nSiti Aminah", "thanks"),
        ("budi@example.com", "Budi Santoso", "Terima kasih.\nBudi Santoso", "thanks"),
        # A name the address does not spell is more than thanks.
        ("siti.aminah@yahoo.co.id", "", "Terima kasih.\nJoko Widodo", "reopen"),
    ],
)
def test_thanks_may_be_signed_with_the_name_or_the_address(
    email: str, name: str, text: str, expected: str
) -> None:
    ticket = _answered(email, name)

    assert continuation(ticket, NOW, 14, text) == Continuation(expected)
