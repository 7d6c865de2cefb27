"""Composing: turns a letter (rendered parts and headers) into the bytes we send.

Writes CRLF MIME with a text and an HTML alternative. Header values that came
from citizens' mail are cleaned of line breaks and unencodable characters first,
so that no input can inject a header or crash serialisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailbot.rendering import Rendered

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# The standard library folds a long header right after its colon, leaving a
# leading space that some clients show; RFC 5322 allows 998 characters a line.
_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Letter:
    """An outgoing mail before it has an id and a date."""

    kind: str
    to: tuple[str, ...]
    subject: str
    body: Rendered
    reply_to: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    # RFC 3834: "auto-replied" answers a message, "auto-generated" starts one.
    auto_submitted: str = "auto-generated"


def clean_header(value: str, limit: int = 200) -> str:
    """One line, no control characters, no lone surrogates, bounded length."""
    flat = _CONTROL.sub(" ", value).strip()
    flat = flat.encode("utf-8", "replace").decode("utf-8")
    return flat[:limit]


def compose(
    letter: Letter,
    *,
    message_id: str,
    from_address: str,
    from_name: str,
    date: datetime,
) -> bytes:
    """The complete message, ready for SMTP."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = Address(display_name=from_name, addr_spec=from_address)
    message["To"] = ", ".join(letter.to)
    message["Subject"] = clean_header(letter.subject, 250)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{message_id}>"
    if letter.reply_to:
        message["Reply-To"] = letter.reply_to
    if letter.in_reply_to:
        message["In-Reply-To"] = f"<{letter.in_reply_to}>"
    if letter.references:
        message["References"] = " ".join(f"<{r}>" for r in letter.references[-20:])
    message["Auto-Submitted"] = letter.auto_submitted
    # Asks Exchange and Outlook not to answer with out-of-office replies.
    message["X-Auto-Response-Suppress"] = "All"

    message.set_content(letter.body.text)
    message.add_alternative(letter.body.html, subtype="html")
    return message.as_bytes()
