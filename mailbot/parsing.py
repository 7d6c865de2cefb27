"""Parsing step: the raw bytes of one received message become a ParsedMail.

Reads raw RFC 5322 bytes; writes nothing. mail-parser parses the MIME tree and
the address and date headers. Its known gaps (folded or mis-decoded header text,
flattened forwarded messages, lost attachments, undecoded base64, automatic
headers forged by a bare CR) are repaired here from that same parsed tree, so a
message is parsed once; every repair is recorded in ``ParsedMail.defects``.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.parser
import email.utils
import functools
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import mailparser
from mailparser.exceptions import MailParserRecursionError

from mailbot.attachments import Attachment, generated_filename, sanitise_filename
from mailbot.errors import MessageError
from mailbot.htmltext import html_to_text, sanitise_html

__all__ = ["Attachment", "ParsedMail", "parse_message"]

log = logging.getLogger(__name__)
# mail-parser logs raw header values (a citizen's subject) at ERROR and a WARNING
# for every report or calendar part; its findings reach ParsedMail.defects instead.
logging.getLogger("mailparser").setLevel(logging.CRITICAL)

MAX_DEPTH = 20
MAX_SUBJECT_CHARS = 998
MAX_MESSAGE_ID_CHARS = 400
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)
AUTOMATIC_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")

_LINE_END = re.compile(rb"\r?\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CHARSET_LABEL = re.compile(r"[a-z0-9][a-z0-9_.:+-]{0,39}")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_ADDR_SPEC = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+")
_OPAQUE_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_NAME_PARAMETERS = (("filename", "content-disposition"), ("name", "content-type"))
# The common case, read without email's full parameter parser; RFC 2231
# "charset*" forms fall through to it.
_CHARSET_PARAMETER = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE)
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver|delivery status notification|mail delivery failed|returned mail"
    r"|failure notice|delivery failure|non remis|tidak terkirim)",
    re.IGNORECASE,
)
# Labels that Python maps to a narrower codec than the mail clients meant.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "shift_jis": "cp932",
    "tis-620": "cp874",
}


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
    is_delivery_report: bool
    defects: tuple[str, ...]


@dataclass
class _Body:
    """What the MIME walk collects; ``notes`` become ParsedMail.defects."""

    notes: list[str]
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    parts: int = 0


def parse_message(raw: bytes, *, now: datetime) -> ParsedMail:
    """Parse one message; raise MessageError only when there is nothing to parse."""
    if not raw.strip():
        raise MessageError("empty message")

    notes: list[str] = []
    raw = _repaired_line_ends(raw, notes)
    parser, message, structured = _parse(raw, notes)
    body = _Body(notes)
    if structured:
        _walk(message, body, 0)
    else:
        _attach(body, None, "message/rfc822", raw, inline=False)
    return _assemble(parser, message, _header_index(message), body, now)


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


def _parse(raw: bytes, notes: list[str]) -> tuple[Any, Message, bool]:
    """Return mail-parser's result (None if it failed), the tree, and whether
    the body was parsed into MIME parts."""
    try:
        parser = mailparser.parse_from_bytes(raw)
    except MailParserRecursionError:
        notes.append("MIME nesting too deep to parse; message kept as an attachment")
        return None, _headers_only(raw), False
    # mail-parser raises assorted internal errors on malformed input
    # (AttributeError on a missing epilogue); the stdlib parse is the fallback.
    except Exception as error:  # noqa: BLE001
        notes.append(f"mail-parser failed ({type(error).__name__}); stdlib used")
    else:
        return parser, parser.message, True

    try:
        return None, email.message_from_bytes(raw), True
    except (TypeError, ValueError, IndexError, RecursionError) as error:
        notes.append(f"stdlib failed too ({type(error).__name__}); message kept whole")
        return None, _headers_only(raw), False


def _headers_only(raw: bytes) -> Message:
    return email.parser.BytesParser().parsebytes(raw, headersonly=True)


def _header_index(message: Message) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        index.setdefault(name.lower(), []).append(str(value))
    return index


# Header text -------------------------------------------------------------


def _header_text(value: str, where: str, notes: list[str]) -> str:
    """Decode one header value to a single line of text (RFC 2047, 8-bit)."""
    text = " ".join(value.split())
    if not text.isascii() or "=?" in text:
        text = _decode_words(text, where, notes)
    return _one_line(text, where, notes)


def _one_line(text: str, where: str, notes: list[str]) -> str:
    text = " ".join(text.split())
    if _CONTROLS.search(text):
        notes.append(f"control characters removed from {where}")
        text = " ".join(_CONTROLS.sub(" ", text).split())
    return text


def _decode_words(text: str, where: str, notes: list[str]) -> str:
    pieces: list[tuple[bytes, str | None]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        # RFC 2047 section 6.2: whitespace between two encoded words is dropped.
        if between and not (between.isspace() and pieces and pieces[-1][1]):
            pieces.append((_raw_bytes(between), None))
        pieces.append((_word_bytes(match), match.group(1).split("*")[0].lower()))
        position = match.end()
    if text[position:]:
        pieces.append((_raw_bytes(text[position:]), None))
    return "".join(
        _decode_bytes(data, label, where, notes) for data, label in _merged(pieces)
    )


def _merged(pieces: list[tuple[bytes, str | None]]) -> list[tuple[bytes, str | None]]:
    # A multi-byte character may be split across two adjacent encoded words.
    merged: list[tuple[bytes, str | None]] = []
    for data, label in pieces:
        if merged and label and merged[-1][1] == label:
            merged[-1] = (merged[-1][0] + data, label)
        else:
            merged.append((data, label))
    return merged


def _word_bytes(match: re.Match[str]) -> bytes:
    encoded = _raw_bytes(match.group(3))
    if match.group(2) in "qQ":
        return binascii.a2b_qp(encoded, header=True)
    return _decode_base64(encoded)[0]


def _plain(text: str) -> str:
    """Return header text that is not RFC 2047 encoded with 8-bit bytes decoded."""
    return text if text.isascii() else _guess_decode(_raw_bytes(text))[0]


def _raw_bytes(text: str) -> bytes:
    # The stdlib keeps undecodable header and body bytes as lone surrogates.
    return text.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=64)
def _codec(label: str) -> str | None:
    name = _CHARSET_ALIASES.get(label, label)
    if not _CHARSET_LABEL.fullmatch(name):
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode_bytes(data: bytes, label: str | None, where: str, notes: list[str]) -> str:
    """Decode bytes by their charset label, repairing what does not fit."""
    label = (label or "utf-8").strip().strip("\"'").lower()
    codec = _codec(label)
    if codec is None:
        notes.append(f"unknown charset {label!r} in {where}")
    else:
        try:
            return _SURROGATES.sub("\ufffd", data.decode(codec))
        except (UnicodeError, LookupError):
            pass

    text, used = _guess_decode(data)
    if codec is not None:
        notes.append(f"{where}: bytes do not fit {label}; read as {used}")
    return text


def _guess_decode(data: bytes) -> tuple[str, str]:
    for codec in ("utf-8", "windows-1252"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _decode_base64(data: bytes) -> tuple[bytes, bool]:
    """Decode base64, salvaging what can be read; the flag says it was clean."""
    compact = data.translate(None, b" \t\r\n")
    try:
        return binascii.a2b_base64(compact, strict_mode=True), True
    except binascii.Error:
        pass

    # Concatenated encoder output has padding in the middle: decode each run.
    runs = (_BASE64_JUNK.sub(b"", run) for run in re.split(rb"=+", compact))
    return b"".join(_decode_base64_run(run) for run in runs), False


def _decode_base64_run(run: bytes) -> bytes:
    # One character left over after the last full group carries no whole byte.
    usable = run[: len(run) - 1] if len(run) % 4 == 1 else run
    return binascii.a2b_base64(usable + b"=" * (-len(usable) % 4))


# MIME body ---------------------------------------------------------------


def _walk(part: Message, body: _Body, depth: int) -> None:
    body.parts += 1
    number = body.parts
    content_type = part.get_content_type()
    body.types.add(content_type)
    _note_part_defects(part, number, body.notes)

    if content_type.startswith("message/"):
        _keep_message(part, content_type, number, body)
    elif content_type in _OPAQUE_TYPES:
        body.notes.append(f"S/MIME encrypted or opaque part {number} not readable")
        _read_leaf(part, content_type, number, body)
    elif not part.is_multipart():
        _read_leaf(part, content_type, number, body)
    elif depth >= MAX_DEPTH:
        body.notes.append(
            f"MIME nesting deeper than {MAX_DEPTH} levels; part {number} kept whole"
        )
        data = _serialised([part], number, body.notes)
        _attach(body, None, "message/rfc822", data, inline=False)
    else:
        for child in part.get_payload():
            if isinstance(child, Message):
                _walk(child, body, depth + 1)


def _note_part_defects(part: Message, number: int, notes: list[str]) -> None:
    for defect in part.defects:
        # Base64 trouble is reported by _payload, which also repairs it.
        if type(defect).__name__.startswith("InvalidBase64"):
            continue
        words = re.sub(r"(?<!^)([A-Z])", r" \1", type(defect).__name__).lower()
        notes.append(f"{words.removesuffix(' defect')} in part {number}")


def _read_leaf(part: Message, content_type: str, number: int, body: _Body) -> None:
    data = _payload(part, number, body.notes)
    filename = _filename(part, body.notes)
    disposition = part.get_content_disposition()
    if content_type.startswith("multipart/"):
        body.notes.append(f"multipart without boundary in part {number}; read as text")
        content_type = "text/plain"

    # A named text part shown inline (mutt, Apple Mail) is body text too.
    readable = content_type in ("text/plain", "text/html")
    if readable and (disposition == "inline" or not (filename or disposition)):
        text = _body_text(data, _charset(part), number, body.notes)
        (body.htmls if content_type == "text/html" else body.texts).append(text)
        return

    inline = disposition == "inline" or (disposition is None and "content-id" in part)
    _attach(body, filename, content_type, data, inline=inline)


def _attach(
    body: _Body, filename: str | None, content_type: str, data: bytes, *, inline: bool
) -> None:
    index = len(body.attachments) + 1
    name = sanitise_filename(filename or "", index=index, content_type=content_type)
    if filename and name == generated_filename(index, content_type):
        body.notes.append(f"attachment name {filename!r} unusable; named {name}")
    body.attachments.append(Attachment(name, content_type, data, inline))


def _keep_message(part: Message, content_type: str, number: int, body: _Body) -> None:
    # A forwarded message stays one .eml attachment instead of being flattened.
    payload = part.get_payload()
    if isinstance(payload, list):
        data = _serialised(payload, number, body.notes)
    else:
        data = _payload(part, number, body.notes)
    _attach(body, _filename(part, body.notes), content_type, data, inline=False)


def _serialised(entities: list[Any], number: int, notes: list[str]) -> bytes:
    try:
        data = b"".join(e.as_bytes() for e in entities if isinstance(e, Message))
    except (RecursionError, LookupError, UnicodeError, ValueError, TypeError) as e:
        notes.append(f"part {number} could not be re-serialised ({type(e).__name__})")
        return b""
    # The generator writes LF after headers but keeps the parts' own line ends.
    return _LINE_END.sub(b"\r\n", data)


def _payload(part: Message, number: int, notes: list[str]) -> bytes:
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        data, clean = _base64_payload(part)
        if not clean:
            notes.append(f"broken base64 in part {number}; readable bytes kept")
        return data

    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _base64_payload(part: Message) -> tuple[bytes, bool]:
    try:
        payload = part.get_payload()
    # With 8-bit bytes in the part the stdlib decodes them by its charset
    # parameter, which can be anything; its own base64 decoding is the fallback.
    except (ValueError, TypeError):
        decoded = part.get_payload(decode=True)
        return (decoded if isinstance(decoded, bytes) else b""), False
    return _decode_base64(_raw_bytes(payload) if isinstance(payload, str) else b"")


def _body_text(data: bytes, charset: str | None, number: int, notes: list[str]) -> str:
    text = _decode_bytes(data, charset, f"part {number}", notes)
    if "\x00" in text:
        notes.append(f"NUL bytes removed from part {number}")
        text = text.replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _filename(part: Message, notes: list[str]) -> str | None:
    source = _parameter_view(part, notes)
    if source is None:
        return None
    for param, header in _NAME_PARAMETERS:
        value = _param(source, param, header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
            return _one_line(_rfc2231_text(value, notes), "attachment name", notes)
        if value:
            return _header_text(str(value), "attachment name", notes)
    return None


def _rfc2231_text(value: tuple[Any, ...], notes: list[str]) -> str:
    text = str(value[2])
    try:
        raw = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:  # already decoded by _parameter_view
        return text
    return _decode_bytes(raw, value[0], "attachment name", notes)


def _charset(part: Message) -> str | None:
    match = _CHARSET_PARAMETER.search(str(part.get("content-type", "")))
    if match:
        return match.group(1)

    value = _param(part, "charset")
    if isinstance(value, tuple):
        value = value[2]
    return str(value) if value else None


def _param(part: Message, name: str, header: str = "content-type") -> Any:
    try:
        return part.get_param(name, None, header)
    # RFC 2231 continuations that mix numbered and unnumbered pieces crash
    # email.utils.decode_params.
    except (TypeError, ValueError, IndexError):
        return None


# Fields ------------------------------------------------------------------


def _assemble(
    parser: Any,
    message: Message,
    headers: dict[str, list[str]],
    body: _Body,
    now: datetime,
) -> ParsedMail:
    notes = body.notes
    first = functools.partial(_first_text, headers, notes)
    sender_name, sender_address = _sender(parser, headers, notes)
    automatic = tuple(n for n in AUTOMATIC_HEADERS if n.lower() in headers)
    subject = _bounded_subject(first("subject"), notes)
    return_path = _return_path(first("return-path"))
    return ParsedMail(
        message_id=_message_id(headers, notes),
        in_reply_to=_id_list(headers.get("in-reply-to", [])),
        references=_id_list(headers.get("references", [])),
        subject=subject,
        sender_name=sender_name,
        sender_address=sender_address,
        reply_to=next(iter(_addresses(parser, headers, "reply-to")), ""),
        to=_addresses(parser, headers, "to"),
        cc=_addresses(parser, headers, "cc"),
        date=_date(parser, headers, now, notes),
        text=_text(body),
        html=sanitise_html("\n".join(body.htmls)) if body.htmls else "",
        attachments=tuple(body.attachments),
        auto_submitted=first("auto-submitted").lower(),
        precedence=first("precedence").lower(),
        list_id=first("list-id"),
        x_autoreply=bool(automatic),
        automatic_headers=automatic,
        return_path=return_path,
        authentication_results=tuple(
            _plain(" ".join(v.split()))
            for v in headers.get("authentication-results", [])
        ),
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


def _first_text(headers: dict[str, list[str]], notes: list[str], name: str) -> str:
    values = headers.get(name)
    return _header_text(values[0], name, notes) if values else ""


def _text(body: _Body) -> str:
    text = "\n".join(body.texts).strip()
    if not text and body.htmls:
        return html_to_text("\n".join(body.htmls))
    return text


def _message_id(headers: dict[str, list[str]], notes: list[str]) -> str | None:
    values = headers.get("message-id")
    if not values:
        notes.append("missing Message-ID")
        return None

    found = _id_list(values[:1])
    if not found or len(found[0]) > MAX_MESSAGE_ID_CHARS:
        notes.append("unusable Message-ID")
        return None
    return found[0]


def _id_list(values: list[str]) -> tuple[str, ...]:
    """Return the message ids in header values, in order, without <>."""
    text = _plain(" ".join(values))
    found = _ANGLE_ID.findall(text) or [t for t in text.split() if "@" in t]
    ids = ("".join(_CONTROLS.sub("", item).split()) for item in found)
    return tuple(dict.fromkeys(item for item in ids if item))


def _sender(
    parser: Any, headers: dict[str, list[str]], notes: list[str]
) -> tuple[str, str]:
    pairs = _address_pairs(parser, headers, "from")
    if not pairs:
        return "", ""

    name, address = pairs[0]
    raw = headers["from"][0]
    if not raw.isascii() or "=?" in raw:
        # mail-parser leaves encoded words next to 8-bit text undecoded.
        name = email.utils.getaddresses([raw])[0][0]
    return _header_text(name, "sender name", notes), address


def _addresses(
    parser: Any, headers: dict[str, list[str]], name: str
) -> tuple[str, ...]:
    return tuple(address for _, address in _address_pairs(parser, headers, name))


def _address_pairs(
    parser: Any, headers: dict[str, list[str]], name: str
) -> list[tuple[str, str]]:
    if parser is not None:
        pairs = getattr(
            parser, name.replace("-", "_") + ("_" if name == "from" else "")
        )
    else:
        pairs = email.utils.getaddresses(headers.get(name, []))
    return [
        (display, _plain(address).lower())
        for display, address in pairs
        if _ADDR_SPEC.fullmatch(address)
    ]


def _date(
    parser: Any, headers: dict[str, list[str]], now: datetime, notes: list[str]
) -> datetime | None:
    if "date" not in headers:
        notes.append("missing Date")
        return None

    value = parser.date if parser is not None else _stdlib_date(headers["date"][0])
    if value is None:
        notes.append("unparseable Date")
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if not EARLIEST_DATE <= value <= _aware(now) + FUTURE_SLACK:
        notes.append(f"implausible Date {value.isoformat()} ignored")
        return None
    return value.astimezone(UTC)


def _stdlib_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(" ".join(value.split()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _return_path(value: str) -> str:
    inner = value.strip().strip("<>").strip()
    if value and not inner:
        return "<>"
    return inner.lower()


def _is_delivery_report(
    message: Message,
    body: _Body,
    headers: dict[str, list[str]],
    *,
    subject: str,
    sender: str,
    return_path: str,
) -> bool:
    if "message/delivery-status" in body.types or "x-failed-recipients" in headers:
        return True

    if "multipart/report" in body.types:
        report = str(_param(message, "report-type") or "").lower()
        if report == "delivery-status":
            return True
    robot = sender.partition("@")[0] in ("mailer-daemon", "postmaster")
    return (robot or return_path == "<>") and bool(_BOUNCE_SUBJECT.search(subject))


def _parameter_view(part: Message, notes: list[str]) -> Message | None:
    """Return the part for reading name parameters, None when it has none."""
    raw = [
        (name, value)
        for name, value in part.raw_items()
        if name.lower() in ("content-type", "content-disposition")
    ]
    if not any("name" in value.lower() for _, value in raw):
        return None
    if all(value.isascii() for _, value in raw):
        return part

    # get_param turns raw 8-bit parameter bytes into U+FFFD: decode them first.
    view = Message()
    for name, value in raw:
        view[name] = _decode_bytes(_raw_bytes(value), None, "attachment name", notes)
    return view
