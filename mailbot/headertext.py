"""Header text of received mail, part of the parsing step: raw values made text.

Reads header values and MIME parameters as the stdlib keeps them (8-bit bytes as
lone surrogates); writes nothing. Decodes RFC 2047 encoded words (also next to
raw 8-bit text, and characters split across words), RFC 2231 parameters and
mislabelled charsets, unfolds to one line and salvages broken base64. Each
repair is appended to the caller's list of notes.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import logging
import re
import unicodedata
from email.message import Message
from typing import Any

log = logging.getLogger(__name__)

_CHARSET_LABEL = re.compile(r"[a-z0-9][a-z0-9_.:+-]{0,39}")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
# Format characters (bidi overrides and marks, zero-width spaces, soft hyphens,
# tags) turn text around on screen ("Trojan Source") or hide inside it, as do
# the blank fillers below: a subject could show staff a reference it does not
# hold. The joiners stay: scripts and emoji need them.
JOINERS = frozenset("\u200c\u200d")
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
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
# Single-byte codecs that UTF-8 text is often mislabelled as.
_WESTERN = frozenset({"cp1252", "latin-1", "iso8859-15"})


def header_text(value: str, where: str, notes: list[str]) -> str:
    """Decode one header value to a single line of text (RFC 2047, 8-bit)."""
    text = " ".join(value.split())
    if not text.isascii() or "=?" in text:
        text = _decode_words(text, where, notes)
    return one_line(text, where, notes)


def one_line(text: str, where: str, notes: list[str]) -> str:
    """Return decoded text unfolded to one line, control characters removed."""
    text = " ".join(text.split())
    if _CONTROLS.search(text):
        notes.append(f"control characters removed from {where}")
        text = " ".join(_CONTROLS.sub(" ", text).split())
    if not text.isascii():
        seen = "".join(char for char in text if not _invisible(char))
        if seen != text:
            notes.append(f"invisible direction or spacing marks removed from {where}")
            text = " ".join(seen.split())
    return text


def _invisible(char: str) -> bool:
    if char in _BLANK_LETTERS:
        return True
    return unicodedata.category(char) == "Cf" and char not in JOINERS


def _decode_words(text: str, where: str, notes: list[str]) -> str:
    pieces: list[tuple[bytes, str | None]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        # RFC 2047 section 6.2: whitespace between two encoded words is dropped.
        if between and not (between.isspace() and pieces and pieces[-1][1]):
            pieces.append((raw_bytes(between), None))
        pieces.append((_word_bytes(match), match.group(1).split("*")[0].lower()))
        position = match.end()
    if text[position:]:
        pieces.append((raw_bytes(text[position:]), None))
    return "".join(
        decode_bytes(data, label, where, notes) for data, label in _merged(pieces)
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
    encoded = raw_bytes(match.group(3))
    if match.group(2) in "qQ":
        return binascii.a2b_qp(encoded, header=True)
    return decode_base64(encoded)[0]


def plain(text: str) -> str:
    """Return header text that is not RFC 2047 encoded with 8-bit bytes decoded."""
    return text if text.isascii() else _guess_decode(raw_bytes(text))[0]


def raw_bytes(text: str) -> bytes:
    """Return the bytes behind text the stdlib decoded from a message."""
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


def decode_bytes(data: bytes, label: str | None, where: str, notes: list[str]) -> str:
    """Decode bytes by their charset label, repairing what does not fit."""
    label = (label or "utf-8").strip().strip("\"'").lower()
    codec = _codec(label)
    if codec is None:
        notes.append(f"unknown charset {label!r} in {where}")
    elif codec in _WESTERN and not data.isascii() and _is_utf8(data):
        # Mail labelled Latin-1 that is really UTF-8 is common (web forms, old
        # clients); genuine Latin-1 text is almost never valid UTF-8 as well.
        notes.append(f"{where}: labelled {label} but is UTF-8; read as utf-8")
        return data.decode("utf-8")
    else:
        try:
            return _SURROGATES.sub("\ufffd", data.decode(codec))
        except (UnicodeError, LookupError):
            pass

    text, used = _guess_decode(data)
    if codec is not None:
        notes.append(f"{where}: bytes do not fit {label}; read as {used}")
    return text


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _guess_decode(data: bytes) -> tuple[str, str]:
    for codec in ("utf-8", "windows-1252"):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def decode_base64(data: bytes) -> tuple[bytes, bool]:
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


def id_list(values: list[str]) -> tuple[str, ...]:
    """Return the message ids in header values, in order, without <>."""
    text = plain(" ".join(values))
    if "=?" in text:
        # Python's email package writes an over-long id as encoded words.
        text = _decode_words(" ".join(text.split()), "message id", [])
    found = _ANGLE_ID.findall(text) or [t for t in text.split() if "@" in t]
    ids = ("".join(_CONTROLS.sub("", item).split()) for item in found)
    return tuple(dict.fromkeys(item for item in ids if item))


# MIME parameters (RFC 2045, RFC 2231) -------------------------------------


def param(part: Message, name: str, header: str = "content-type") -> Any:
    """Return one parameter as the stdlib reads it, None when it cannot."""
    try:
        return part.get_param(name, None, header)
    # RFC 2231 continuations that mix numbered and unnumbered pieces crash
    # email.utils.decode_params.
    except (TypeError, ValueError, IndexError):
        return None


def rfc2231_text(value: tuple[Any, ...], notes: list[str]) -> str:
    """Decode an RFC 2231 (charset, language, text) parameter value."""
    text = str(value[2])
    try:
        raw = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:  # already decoded by parameter_view
        return text
    return decode_bytes(raw, value[0], "attachment name", notes)


def parameter_view(part: Message, notes: list[str]) -> Message | None:
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
        view[name] = decode_bytes(raw_bytes(value), None, "attachment name", notes)
    return view
