"""Sender checks: whether a message that claims a staff address really is from it.

Reads the Authentication-Results headers (RFC 8601, parsed by authres) of a
parsed message and the threading evidence; writes only the record of a refused
attempt. Only the header written by our own trusted receiving server counts,
and only when it is the topmost: any sender can add headers naming any server,
ours included. Each account may name its own server (two inboxes on two
providers); without one, the staff address alone is taken, as before this check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import authres
from sqlalchemy.orm import Session

from mailbot.commitlog import on_commit
from mailbot.models import InboundMail, InboundStatus, Ticket
from mailbot.parsing import ParsedMail
from mailbot.tickets import record_event

log = logging.getLogger(__name__)

_ANGLED = re.compile(r"(?<==)<([^<>\s()\"]*)>")
# What each method verified: the signing domain (Gmail writes only the
# identity, header.i), the envelope sender, the From domain itself. A DMARC pass
# is an aligned DKIM or SPF pass already.
_VERIFIED = {
    "dkim": (("header", "d"), ("header", "i")),
    "spf": (("smtp", "mailfrom"),),
    "dmarc": (("header", "from"),),
}


@dataclass(frozen=True)
class SenderCheck:
    """The verdict on a staff sender, with what supports it."""

    authentic: bool
    evidence: tuple[str, ...]
    reason: str


def check_sender(
    mail: ParsedMail, trusted_servers: Collection[str], *, signed_reply: bool
) -> SenderCheck:
    """Whether the From address is backed by a trusted server's aligned pass.

    ``trusted_servers`` are the authserv-ids whose header counts: the one of the
    inbox the mail came from, or, for an imported file, any configured one.
    ``signed_reply`` (a reply naming our Message-ID signed for this very address)
    is recorded as further evidence; alone it does not make a sender authentic.
    """
    evidence = ("signed-reply",) if signed_reply else ()
    if not trusted_servers:
        return SenderCheck(True, ("staff-address", *evidence), "no trusted server set")

    headers = mail.authentication_results
    if not headers:
        return SenderCheck(False, evidence, "no Authentication-Results of ours")
    ours = {server.strip().lower() for server in trusted_servers}
    topmost = _parsed(headers[0])
    if topmost is None:
        return SenderCheck(False, evidence, "topmost Authentication-Results unreadable")
    if topmost.authserv_id.lower() not in ours:
        reason = "topmost Authentication-Results is not our server's"
        return SenderCheck(False, evidence, reason)
    # Postfix's milters each write a header of their own (OpenDMARC's above
    # OpenDKIM's), all above the Received header of that hop.
    last_hop = [topmost, *map(_parsed, headers[1 : mail.authentication_results_on_top])]
    sender_domain = _domain(mail.sender_address)
    passed = tuple(
        dict.fromkeys(
            method
            for header in last_hop
            if header is not None and header.authserv_id.lower() in ours
            for method in _aligned_passes(header, sender_domain)
        )
    )
    if not passed:
        return SenderCheck(False, evidence, "no aligned DKIM, SPF or DMARC pass")
    return SenderCheck(True, (*passed, *evidence), "authenticated")


def _parsed(header: str) -> authres.AuthenticationResultsHeader | None:
    # Only the topmost header is the one our server prepended on receipt: a
    # sender writes any header naming our server above what the real path
    # added, so none below is read. One that breaks the grammar (a comment
    # left open by a quoted sender) vouches for nothing.
    value = " ".join(header.split()).rstrip("; ")
    # Yahoo ends the header with ";", Zoho and others write header.from=<a@b>:
    # both break RFC 8601's grammar but say nothing a sender could forge.
    value = _ANGLED.sub(r"\1", value)
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except authres.AuthResError:
        return None


def _aligned_passes(
    header: authres.AuthenticationResultsHeader, sender_domain: str
) -> tuple[str, ...]:
    passed: list[str] = []
    for result in header.results:
        method = str(result.method).lower()
        if method not in _VERIFIED or str(result.result).lower() != "pass":
            continue
        values = {
            (str(prop.type).lower(), str(prop.name).lower()): _domain(str(prop.value))
            for prop in result.properties
        }
        # The first property the method names is the one that counts.
        domain = next((values[key] for key in _VERIFIED[method] if key in values), "")
        # DMARC names the From domain itself; the others may name a parent.
        exact = method == "dmarc"
        if domain == sender_domain if exact else _aligned(domain, sender_domain):
            passed.append(method)
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
