"""Parsing step: the raw bytes of one received message become a ParsedMail.

Reads raw RFC 5322 bytes; writes nothing. The stdlib parses the MIME tree, as it
does inside mail-parser, and mail-parser's own parsers read the address and date
headers. mail-parser's reading of the parts is not used: its known gaps (folded
or mis-decoded header text, flattened forwarded messages, lost attachments,
undecoded base64, automatic headers forged by a bare CR) made mailbot walk the
tree itself, and decoding every part twice cost more than parsing. So a message
is parsed once: header text in ``headertext``, the MIME parts in ``mimeparts``,
the fields here; a message over 5 MB is parsed as a skeleton without its long
base64 runs (``largemail``). Every repair is recorded in ``ParsedMail.defects``.
"""

from __future__ import annotations

import email
import email.parser
import email.utils
import functools
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.errors import HeaderParseError
from email.message import Message

from mailparser.dates import parse_mail_date
from mailparser.utils import get_addresses

from mailbot.attachments import Attachment
from mailbot.errors import MessageError
from mailbot.headertext import header_text, id_list, param, plain
from mailbot.largemail import LARGE_MESSAGE_BYTES, Cutouts, cut_out
from mailbot.mimeparts import Body, attach, walk

__all__ = ["Attachment", "ParsedMail", "parse_message", "quiet_library_logging"]

log = logging.getLogger(__name__)

MAX_SUBJECT_CHARS = 998
NO_HEADER_FIELDS = "no header fields: not an email message, or its first line is broken"
MAX_MESSAGE_ID_CHARS = 400
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
# X-Auto-Response-Suppress is left out: Exchange sets it on mail people write,
# and it asks others not to auto-reply rather than saying the mail is automatic.
AUTOMATIC_HEADERS = ("X-Autoreply", "X-Autorespond")

_BARE_CR = re.compile(rb"\r(?!\n)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ADDR_SPEC = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery status notification|mail delivery failed|returned mail"
    r"|failure notice|delivery failure|non remis|tidak terkirim)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedMail:
    """What mailbot needs of one received message, decoded and repaired.

    Header text is decoded (RFC 2047, RFC 2231, mislabelled 8-bit) and on one
    line. Message ids carry no angle brackets; addresses are lower-case
    addr-specs. ``date`` is aware UTC, None when missing or implausible.
    ``text`` is the plain-text body (HTML-only mail converted); ``html`` is the
    HTML body made inert. Forwarded messages, calendar and delivery-status parts
    are attachments, never body text. ``return_path`` is "<>" for a null
    sender. ``automatic_headers`` names the X-Auto* headers present. Each entry
    of ``defects`` says what was broken and how it was read.
    """

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender_name: str
    sender_address: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    auto_submitted: str
    precedence: str
    list_id: str
    x_autoreply: bool
    automatic_headers: tuple[str, ...]
    return_path: str
    authentication_results: tuple[str, ...]
    # How many of them stand above the first Received header: written by the
    # last hop (Postfix's milters each add one), never by the sender.
    authentication_results_on_top: int
    is_delivery_report: bool
    defects: tuple[str, ...]


def quiet_library_logging() -> None:
    """Silence mail-parser's own log records; call once at start."""
    # mail-parser logs raw header values (citizens' subjects) at ERROR.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)


def parse_message(
    raw: bytes, *, now: datetime, large_from: int = LARGE_MESSAGE_BYTES
) -> ParsedMail:
    """Parse one message; raise MessageError only when there is nothing to parse.

    Bytes without a single header field are no message at all.

    A message over ``large_from`` bytes is parsed with its long base64 runs
    cut out (``largemail``), with the same result in a fraction of the memory.
    """
    if not raw.strip():
        raise MessageError("empty message")

    notes: list[str] = []
    raw = _repaired_line_ends(raw, notes)
    skeleton, cutouts = _skeleton(raw, large_from)
    message, structured = _parse(skeleton, notes)
    body = Body(notes, cutouts=cutouts)
    if structured:
        walk(message, body, 0)
    else:
        attach(body, None, "message/rfc822", raw, inline=False)
    headers = _header_index(message)
    if not headers:
        # A README or a scan dropped into an import folder: say what it is,
        # rather than the missing sender it lacks along with everything else.
        raise MessageError(NO_HEADER_FIELDS)
    return _assemble(message, headers, body, now)


def _skeleton(raw: bytes, large_from: int) -> tuple[bytes, Cutouts | None]:
    if len(raw) <= large_from:
        return raw, None
    return cut_out(raw)


def _repaired_line_ends(raw: bytes, notes: list[str]) -> bytes:
    if b"\n" not in raw:
        notes.append("CR-only line ends read as line breaks")
        return raw.replace(b"\r", b"\n")

    # The stdlib starts a new header at a bare CR, so "Subject: x\rAuto-Submitted:
    # auto-replied" would forge an automatic header (RFC 5322 section 2.2).
    match = _HEADER_END.search(raw)
    end = match.start() if match else len(raw)
    if not _BARE_CR.search(raw, 0, end):
        return raw
    notes.append("bare CR inside the header section read as a space")
    return _BARE_CR.sub(b" ", raw[:end]) + raw[end:]


def _parse(raw: bytes, notes: list[str]) -> tuple[Message, bool]:
    """Return the tree, and whether the body was parsed into MIME parts."""
    try:
        return email.message_from_bytes(raw), True
    except RecursionError:
        notes.append("MIME nesting too deep to parse; message kept as an attachment")
    except (TypeError, ValueError, IndexError) as error:
        notes.append(
            f"stdlib parser failed ({type(error).__name__}); message kept whole"
        )
    return _headers_only(raw), False


def _headers_only(raw: bytes) -> Message:
    return email.parser.BytesParser().parsebytes(raw, headersonly=True)


def _header_index(message: Message) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        index.setdefault(name.lower(), []).append(str(value))
    return index


def _assemble(
    message: Message,
    headers: dict[str, list[str]],
    body: Body,
    now: datetime,
) -> ParsedMail:
    notes = body.notes
    first = functools.partial(_first_text, headers, notes)
    sender_name, sender_address = _sender(message, headers, notes)
    automatic = tuple(n for n in AUTOMATIC_HEADERS if n.lower() in headers)
    subject = _bounded_subject(first("subject"), notes)
    return_path = _return_path(first("return-path"))
    return ParsedMail(
        message_id=_message_id(headers, notes),
        in_reply_to=id_list(headers.get("in-reply-to", [])),
        references=id_list(headers.get("references", [])),
        subject=subject,
        sender_name=sender_name,
        sender_address=sender_address,
        reply_to=next(iter(_addresses(message, "reply-to", notes)), ""),
        to=_addresses(message, "to", notes),
        cc=_addresses(message, "cc", notes),
        date=_date(headers, now, notes),
        text=body.text(),
        html=body.html(),
        attachments=tuple(body.attachments),
        auto_submitted=first("auto-submitted").lower(),
        precedence=first("precedence").lower(),
        list_id=first("list-id"),
        x_autoreply=bool(automatic),
        automatic_headers=automatic,
        return_path=return_path,
        authentication_results=tuple(
            plain(" ".join(v.split()))
            for v in headers.get("authentication-results", [])
        ),
        authentication_results_on_top=_results_on_top(message),
        is_delivery_report=_is_delivery_report(
            message,
            body,
            headers,
            subject=subject,
            sender=sender_address,
            return_path=return_path,
        ),
        defects=tuple(dict.fromkeys(notes)),
    )


def _bounded_subject(subject: str, notes: list[str]) -> str:
    if len(subject) <= MAX_SUBJECT_CHARS:
        return subject
    notes.append(f"subject of {len(subject)} characters cut to {MAX_SUBJECT_CHARS}")
    return subject[:MAX_SUBJECT_CHARS].rstrip()


def _results_on_top(message: Message) -> int:
    # Without any Received header there is no hop to stand above: only the
    # topmost counts, as everywhere else.
    on_top = 0
    for name in message:
        lowered = name.lower()
        if lowered == "received":
            return on_top
        on_top += lowered == "authentication-results"
    return min(on_top, 1)


def _first_text(headers: dict[str, list[str]], notes: list[str], name: str) -> str:
    values = headers.get(name)
    return header_text(values[0], name, notes) if values else ""


def _message_id(headers: dict[str, list[str]], notes: list[str]) -> str | None:
    values = headers.get("message-id")
    if not values:
        notes.append("missing Message-ID")
        return None

    found = id_list(values[:1])
    if not found or len(found[0]) > MAX_MESSAGE_ID_CHARS:
        notes.append("unusable Message-ID")
        return None
    return found[0]


def _sender(
    message: Message, headers: dict[str, list[str]], notes: list[str]
) -> tuple[str, str]:
    pairs = _address_pairs(message, "from", notes)
    if not pairs:
        return "", ""

    name, address = pairs[0]
    raw = headers["from"][0]
    if not raw.isascii() or "=?" in raw:
        # mail-parser leaves encoded words next to 8-bit text undecoded.
        name = email.utils.getaddresses([raw])[0][0]
    return header_text(name, "sender name", notes), address


def _addresses(message: Message, name: str, notes: list[str]) -> tuple[str, ...]:
    return tuple(address for _, address in _address_pairs(message, name, notes))


def _address_pairs(
    message: Message, name: str, notes: list[str]
) -> list[tuple[str, str]]:
    # The first occurrence counts, as in mail-parser's own reading.
    value = message.get(name)
    if value is None:
        return []
    try:
        pairs = get_addresses(value, decode_names=True)
    except HeaderParseError as error:
        # e.g. an encoded word with broken base64 in the display name.
        notes.append(f"{name}: {error}; read with the stdlib")
        pairs = email.utils.getaddresses([str(value)])
    return [
        # A name that only repeats the address is no name.
        ("" if display == address else display, plain(address).lower())
        for display, address in pairs
        if address and _ADDR_SPEC.fullmatch(address)
    ]


def _date(
    headers: dict[str, list[str]], now: datetime, notes: list[str]
) -> datetime | None:
    if "date" not in headers:
        notes.append("missing Date")
        return None

    value: datetime | None = parse_mail_date(headers["date"][0]).value
    if value is None:
        notes.append("unparseable Date")
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST_DATE <= value <= _aware(now) + FUTURE_SLACK:
        notes.append(f"implausible Date {value.isoformat()} ignored")
        return None
    return value.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _return_path(value: str) -> str:
    inner = value.strip().strip("<>").strip()
    if value and not inner:
        return "<>"
    return inner.lower()


def _is_delivery_report(
    message: Message,
    body: Body,
    headers: dict[str, list[str]],
    *,
    subject: str,
    sender: str,
    return_path: str,
) -> bool:
    if "message/delivery-status" in body.types or "x-failed-recipients" in headers:
        return True

    if "multipart/report" in body.types:
        report = str(param(message, "report-type") or "").lower()
        if report == "delivery-status":
            return True
    robot = sender.partition("@")[0] in ("mailer-daemon", "postmaster")
    return (robot or return_path == "<>") and bool(_BOUNCE_SUBJECT.search(subject))
