"""Sender checks: whether a message that claims a staff address really is from it.

Reads the Authentication-Results headers (RFC 8601) of a parsed message and the
threading evidence; writes only the record of a refused attempt. Only the header
written by our own trusted receiving server counts, and only when it is the
topmost: any sender can add headers naming any server, ours included. Each
account may name its own server (two inboxes on two providers); without one,
the staff address alone is taken, as before this check.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mailbot.commitlog import on_commit
from mailbot.models import InboundMail, InboundStatus, Ticket
from mailbot.parsing import ParsedMail
from mailbot.tickets import record_event

log = logging.getLogger(__name__)

_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_RESULT = re.compile(r"^\s*(dkim|spf)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE)
_PROPERTY = re.compile(r"\b(header\.d|header\.i|smtp\.mailfrom)\s*=\s*(\S+)", re.I)


@dataclass(frozen=True)
class SenderCheck:
    """The verdict on a staff sender, with what supports it."""

    authentic: bool
    evidence: tuple[str, ...]
    reason: str


def check_sender(
    mail: ParsedMail, trusted_authserv_id: str | None, *, signed_reply: bool
) -> SenderCheck:
    """Whether the From address is backed by the trusted server's DKIM or SPF pass.

    ``signed_reply`` (a reply naming our Message-ID signed for this very address)
    is recorded as further evidence; alone it does not make a sender authentic.
    """
    evidence = ("signed-reply",) if signed_reply else ()
    if trusted_authserv_id is None:
        return SenderCheck(True, ("staff-address", *evidence), "no trusted server set")

    header = _trusted_header(mail.authentication_results, trusted_authserv_id)
    if header is None and not mail.authentication_results:
        return SenderCheck(False, evidence, "no Authentication-Results of ours")
    if header is None:
        reason = "topmost Authentication-Results is not our server's"
        return SenderCheck(False, evidence, reason)
    passed = _aligned_passes(header, _domain(mail.sender_address))
    if not passed:
        return SenderCheck(False, evidence, "neither DKIM nor SPF passed, aligned")
    return SenderCheck(True, (*passed, *evidence), "authenticated")


def _trusted_header(headers: tuple[str, ...], authserv_id: str) -> str | None:
    # Only the topmost header is the one our server prepended on receipt. A
    # header naming our server further down came with the message: a sender
    # writes it above everything the real path added, so it is never read.
    if not headers:
        return None
    first, _, rest = _COMMENT.sub(" ", headers[0]).partition(";")
    words = first.split()
    if words and words[0].lower() == authserv_id.strip().lower():
        return rest
    return None


def _aligned_passes(results: str, sender_domain: str) -> tuple[str, ...]:
    # A quoted local part may hold ";" and "dkim=pass" of its own making.
    results = _QUOTED.sub("q", results)
    passed: list[str] = []
    for resinfo in results.split(";"):
        match = _RESULT.match(resinfo)
        if match is None or match[2].lower() != "pass":
            continue
        domains = [_domain(value) for _, value in _PROPERTY.findall(match[3])]
        if any(_aligned(domain, sender_domain) for domain in domains):
            passed.append(match[1].lower())
    return tuple(dict.fromkeys(passed))


def _aligned(domain: str, sender_domain: str) -> bool:
    # Relaxed alignment (RFC 7489 3.1): the same domain or one of its parents.
    if not domain or not sender_domain:
        return False
    return sender_domain == domain or sender_domain.endswith("." + domain)


def _domain(value: str) -> str:
    return value.strip().strip("<>\"'").rpartition("@")[2].rstrip(".").lower()


def record_forgery(
    session: Session,
    inbound: InboundMail,
    ticket: Ticket | None,
    check: SenderCheck,
    now: datetime,
) -> None:
    """Set a forged staff message aside; it never acts on the ticket it names."""
    inbound.status, inbound.reason = InboundStatus.FORGED, check.reason
    if ticket is not None:
        inbound.ticket_id = ticket.id
        evidence = ", ".join(check.evidence) or "none"
        detail = f"{check.reason}; evidence: {evidence}"
        record_event(session, ticket, "forged_sender", detail, at=now)
    on_commit(
        session,
        log.warning,
        "inbound %d: staff address not authenticated, ignored: %s",
        inbound.id,
        check.reason,
    )
