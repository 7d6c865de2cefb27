"""Screening: is a received message a person's mail, automatic mail, or a bounce?

Automatic mail (RFC 3834) never opens a ticket and never gets an answer; it is
still archived and, where it belongs to a ticket, attached to it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from mailbot.parsing import ParsedMail

_ROBOT_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "bounce",
        "bounces",
    }
)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "auto_reply"})


class Verdict(enum.StrEnum):
    PERSON = "person"
    AUTOMATIC = "automatic"
    BOUNCE = "bounce"


@dataclass(frozen=True)
class Screening:
    verdict: Verdict
    reason: str


def screen(mail: ParsedMail, own_addresses: Collection[str]) -> Screening:
    """Decide how a message is to be treated, with the reason."""
    local_part = mail.sender_address.partition("@")[0]
    if mail.is_delivery_report:
        return Screening(Verdict.BOUNCE, "delivery status report")
    if mail.return_path == "<>" and local_part in {"mailer-daemon", "postmaster"}:
        return Screening(Verdict.BOUNCE, f"null return path from {local_part}")

    checks = (
        (
            mail.auto_submitted not in ("", "no"),
            f"Auto-Submitted: {mail.auto_submitted}",
        ),
        (mail.x_autoreply, f"header {', '.join(mail.automatic_headers)}"),
        (mail.precedence in _BULK_PRECEDENCE, f"Precedence: {mail.precedence}"),
        (local_part in _ROBOT_LOCAL_PARTS, f"sender is {local_part}"),
        (mail.sender_address in own_addresses, "sent from one of our own addresses"),
    )
    for applies, reason in checks:
        if applies:
            return Screening(Verdict.AUTOMATIC, reason)
    return Screening(Verdict.PERSON, "")
