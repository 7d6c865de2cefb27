"""Screening: is a received message a person's mail, automatic mail, or a bounce?

Automatic mail (RFC 3834) never opens a ticket and never gets an answer; it is
still archived and, where it belongs to a ticket, attached to it. Mail relayed
by a mailing list (``List-Id``, ``Precedence: list``) is a person's mail: the
person in From gets the acknowledgement, never the list.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection
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
        "do_not_reply",
        "bounce",
        "bounces",
    }
)
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "auto_reply"})
# Subjects that out-of-office and other responders put on their answers, in the
# languages this office receives; only consulted when the mail cites our letter.
_AUTOMATIC_SUBJECT = re.compile(
    r"(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|"
    r"auto[- ]?response|^auto:|vacation|away from|"
    r"balasan otomatis|pesan otomatis|jawaban otomatis|sedang cuti|"
    r"di luar kantor|automatische antwort|abwesenheit|r[ée]ponse automatique)",
    re.IGNORECASE,
)

IsOurs = Callable[[str], bool]


class Verdict(enum.StrEnum):
    PERSON = "person"
    AUTOMATIC = "automatic"
    BOUNCE = "bounce"


@dataclass(frozen=True)
class Screening:
    verdict: Verdict
    reason: str


def screen(
    mail: ParsedMail,
    own_addresses: Collection[str],
    *,
    is_ours: IsOurs | None = None,
) -> Screening:
    """Decide how a message is to be treated, with the reason.

    ``is_ours`` tells whether a Message-ID is one we wrote (a signed id).
    """
    bounce = _bounce_reason(mail)
    if bounce:
        return Screening(Verdict.BOUNCE, bounce)

    automatic = _automatic_reason(mail, own_addresses)
    if not automatic and is_ours is not None:
        automatic = _answer_to_us_reason(mail, is_ours)
    if automatic:
        return Screening(Verdict.AUTOMATIC, automatic)
    return Screening(Verdict.PERSON, "")


def is_list_mail(mail: ParsedMail) -> bool:
    """Whether a mailing list or community group relayed the message."""
    return bool(mail.list_id) or mail.precedence == "list"


def complainant_address(mail: ParsedMail) -> str:
    """Who wrote the message: the From address, unless a list rewrote From.

    Lists that rewrite From to their own address for DMARC ("'Budi' via Warga
    RT 05 <rt05@groups.example>") put the writer in Reply-To; the answer goes
    there, never to the list.
    """
    rewritten = _is_list_address(mail.sender_address, mail.list_id)
    writer = mail.reply_to
    if rewritten and writer and not _is_list_address(writer, mail.list_id):
        return writer
    return mail.sender_address


def _is_list_address(address: str, list_id: str) -> bool:
    # RFC 2919: the List-Id of list@example.org is commonly "list.example.org".
    identifier = list_id.rpartition("<")[2].rstrip(">").strip().lower()
    return bool(identifier) and address.lower().replace("@", ".", 1) == identifier


def _local_part(mail: ParsedMail) -> str:
    return mail.sender_address.partition("@")[0]


def _bounce_reason(mail: ParsedMail) -> str:
    if mail.is_delivery_report:
        return "delivery status report"
    local_part = _local_part(mail)
    if mail.return_path == "<>" and local_part in _BOUNCE_SENDERS:
        return f"null return path from {local_part}"
    return ""


def _automatic_reason(mail: ParsedMail, own_addresses: Collection[str]) -> str:
    local_part = _local_part(mail)
    checks = (
        (
            mail.auto_submitted not in ("", "no"),
            f"Auto-Submitted: {mail.auto_submitted[:40]}",
        ),
        (mail.x_autoreply, f"header {', '.join(mail.automatic_headers)}"),
        (mail.precedence in _BULK_PRECEDENCE, f"Precedence: {mail.precedence}"),
        (local_part in _ROBOT_LOCAL_PARTS, f"sender is {local_part}"),
        (mail.sender_address in own_addresses, "sent from one of our own addresses"),
    )
    return next((reason for applies, reason in checks if applies), "")


def _answer_to_us_reason(mail: ParsedMail, is_ours: IsOurs) -> str:
    # A responder that hides its headers still tends to say what it is in the
    # subject; when such mail cites our own letter it is a loop in the making.
    cites_us = any(is_ours(i) for i in (*mail.in_reply_to, *mail.references))
    if cites_us and _AUTOMATIC_SUBJECT.search(mail.subject):
        return "answers our own letter and its subject reads as automatic"
    return ""
