"""MIME parts of received mail, part of the parsing step: the tree walked once.

Reads the parsed MIME tree of one message; writes a Body: its plain-text and
HTML body parts, every other part as an Attachment (a forwarded message whole
as .eml, report and calendar parts too), the content types seen, and a note for
each defect or repair. Nesting deeper than MAX_DEPTH levels is kept whole.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from mailbot.attachments import Attachment, generated_filename, sanitise_filename
from mailbot.headertext import (
    decode_base64,
    decode_bytes,
    header_text,
    one_line,
    param,
    parameter_view,
    raw_bytes,
    rfc2231_text,
)
from mailbot.htmltext import html_to_text, sanitise_html
from mailbot.largemail import Cutouts

log = logging.getLogger(__name__)

MAX_DEPTH = 20

_LINE_END = re.compile(rb"\r?\n")
_OPAQUE_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
_NAME_PARAMETERS = (("filename", "content-disposition"), ("name", "content-type"))
# The common case, read without email's full parameter parser; RFC 2231
# "charset*" forms fall through to it.
_CHARSET_PARAMETER = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE)


@dataclass
class Body:
    """What the MIME walk collects; ``notes`` become ParsedMail.defects."""

    notes: list[str]
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    types: set[str] = field(default_factory=set)
    parts: int = 0
    cutouts: Cutouts | None = None

    def text(self) -> str:
        """Return the plain-text body, or the HTML body's text when there is none."""
        text = "\n".join(self.texts).strip()
        if not text and self.htmls:
            return html_to_text("\n".join(self.htmls))
        return text

    def html(self) -> str:
        """Return the HTML body made inert, or "" when there is none."""
        return sanitise_html("\n".join(self.htmls)) if self.htmls else ""


def walk(part: Message, body: Body, depth: int) -> None:
    """Collect ``part`` and everything below it into ``body``."""
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
        data = _serialised([part], number, body)
        attach(body, None, "message/rfc822", data, inline=False)
    else:
        for child in part.get_payload():
            if isinstance(child, Message):
                walk(child, body, depth + 1)


def _note_part_defects(part: Message, number: int, notes: list[str]) -> None:
    for defect in part.defects:
        # Base64 trouble is reported by _payload, which also repairs it.
        if type(defect).__name__.startswith("InvalidBase64"):
            continue
        words = re.sub(r"(?<!^)([A-Z])", r" \1", type(defect).__name__).lower()
        notes.append(f"{words.removesuffix(' defect')} in part {number}")


def _read_leaf(part: Message, content_type: str, number: int, body: Body) -> None:
    data = _payload(part, number, body)
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
    attach(body, filename, content_type, data, inline=inline)


def attach(
    body: Body, filename: str | None, content_type: str, data: bytes, *, inline: bool
) -> None:
    """Add an attachment to ``body`` under a safe name, noting an unusable one."""
    index = len(body.attachments) + 1
    name = sanitise_filename(filename or "", index=index, content_type=content_type)
    if filename and name == generated_filename(index, content_type):
        body.notes.append(f"attachment name {filename!r} unusable; named {name}")
    body.attachments.append(Attachment(name, content_type, data, inline))


def _keep_message(part: Message, content_type: str, number: int, body: Body) -> None:
    # A forwarded message stays one .eml attachment instead of being flattened.
    payload = part.get_payload()
    if isinstance(payload, list):
        data = _serialised(payload, number, body)
    else:
        data = _payload(part, number, body)
    attach(body, _filename(part, body.notes), content_type, data, inline=False)


def _serialised(entities: list[Any], number: int, body: Body) -> bytes:
    notes = body.notes
    if body.cutouts is not None:
        for entity in entities:
            body.cutouts.restore(entity)
    try:
        data = b"".join(e.as_bytes() for e in entities if isinstance(e, Message))
    except (RecursionError, LookupError, UnicodeError, ValueError, TypeError) as e:
        notes.append(f"part {number} could not be re-serialised ({type(e).__name__})")
        return b""
    # The generator writes LF after headers but keeps the parts' own line ends.
    return _LINE_END.sub(b"\r\n", data)


def _payload(part: Message, number: int, body: Body) -> bytes:
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        data, clean = _base64_payload(part, body.cutouts)
        if not clean:
            body.notes.append(f"broken base64 in part {number}; readable bytes kept")
        return data

    if body.cutouts is not None:
        body.cutouts.restore(part)
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _base64_payload(part: Message, cutouts: Cutouts | None) -> tuple[bytes, bool]:
    read = cutouts.read_base64(part) if cutouts is not None else None
    if read is not None:
        return read
    try:
        payload = part.get_payload()
    # With 8-bit bytes in the part the stdlib decodes them by its charset
    # parameter, which can be anything; its own base64 decoding is the fallback.
    except (ValueError, TypeError):
        decoded = part.get_payload(decode=True)
        return (decoded if isinstance(decoded, bytes) else b""), False
    return decode_base64(raw_bytes(payload) if isinstance(payload, str) else b"")


def _body_text(data: bytes, charset: str | None, number: int, notes: list[str]) -> str:
    text = decode_bytes(data, charset, f"part {number}", notes)
    if "\x00" in text:
        notes.append(f"NUL bytes removed from part {number}")
        text = text.replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _filename(part: Message, notes: list[str]) -> str | None:
    source = parameter_view(part, notes)
    if source is None:
        return None
    for name, header in _NAME_PARAMETERS:
        value = param(source, name, header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
            return one_line(rfc2231_text(value, notes), "attachment name", notes)
        if value:
            return header_text(str(value), "attachment name", notes)
    return None


def _charset(part: Message) -> str | None:
    match = _CHARSET_PARAMETER.search(str(part.get("content-type", "")))
    if match:
        return match.group(1)

    value = param(part, "charset")
    if isinstance(value, tuple):
        value = value[2]
    return str(value) if value else None
