"""Large messages, part of the parsing step: long base64 runs parsed as stand-ins.

Reads the raw bytes of a message over LARGE_MESSAGE_BYTES; writes nothing. Each
run of at least MIN_CUT_BYTES of whole lines made only of base64 characters is
replaced by a one-line stand-in before parsing, so that mail-parser and the
stdlib parse a small skeleton instead of holding the message several times
over. The MIME walk reads the stand-ins back: a base64 part is decoded straight
from the raw bytes, a piece at a time; any other part gets its original text
back first. The result is the same as parsing the whole message.
"""

from __future__ import annotations

import binascii
import io
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from mailbot.headertext import decode_base64, raw_bytes

log = logging.getLogger(__name__)

LARGE_MESSAGE_BYTES = 5 * 1024 * 1024
MIN_CUT_BYTES = 256 * 1024
DECODE_PIECE_BYTES = 1024 * 1024

# The lookbehind starts a match only where a run starts, keeping the scan linear.
_BASE64_RUN = re.compile(
    rb"(?<![A-Za-z0-9+/=\r\n])[A-Za-z0-9+/=\r\n]{%d,}" % MIN_CUT_BYTES
)


@dataclass(frozen=True)
class Cutouts:
    """The raw bytes behind each stand-in of one message's skeleton."""

    raw: bytes
    spans: dict[str, tuple[int, int]]
    stand_in: re.Pattern[str]

    def read_base64(self, part: Message) -> tuple[bytes, bool] | None:
        """Decode a base64 part holding stand-ins; None when it holds none."""
        try:
            payload = part.get_payload()
        except (ValueError, TypeError):
            self.restore(part)
            return None
        if not isinstance(payload, str) or not self.stand_in.search(payload):
            return None
        if not payload.isascii():
            self.restore(part)
            return None
        return self._decoded(payload)

    def restore(self, part: Message) -> None:
        """Put the original text back into ``part`` and every part below it."""
        for entity in part.walk():
            payload = entity.get_payload()
            if isinstance(payload, str) and self.stand_in.search(payload):
                entity.set_payload(self._restored(payload))
            for side in ("preamble", "epilogue"):
                text = getattr(entity, side)
                if isinstance(text, str) and self.stand_in.search(text):
                    setattr(entity, side, self._restored(text))

    def _restored(self, text: str) -> str:
        return self.stand_in.sub(lambda m: self._region(m.group()).decode(), text)

    def _region(self, stand_in: str) -> bytes:
        start, end = self.spans[stand_in]
        return self.raw[start:end]

    def _decoded(self, payload: str) -> tuple[bytes, bool]:
        out = io.BytesIO()
        try:
            _strict_decode(self._pieces(payload), out)
        except binascii.Error:
            # Broken base64 is salvaged from the whole text, as for any message.
            del out
            return decode_base64(raw_bytes(self._restored(payload)))
        return out.getvalue(), True

    def _pieces(self, payload: str) -> Iterator[bytes]:
        view = memoryview(self.raw)
        position = 0
        for match in self.stand_in.finditer(payload):
            yield raw_bytes(payload[position : match.start()])
            start, end = self.spans[match.group()]
            for offset in range(start, end, DECODE_PIECE_BYTES):
                yield bytes(view[offset : min(offset + DECODE_PIECE_BYTES, end)])
            position = match.end()
        yield raw_bytes(payload[position:])


def _strict_decode(pieces: Iterator[bytes], out: io.BytesIO) -> None:
    # Decoding whole groups of four per piece equals one strict decode of the
    # joined text, provided padding is only ever seen at the very end.
    carry = b""
    padded = False
    for piece in pieces:
        data = carry + piece.translate(None, b" \t\r\n")
        if padded and data:
            raise binascii.Error("data after padding")
        usable = len(data) - len(data) % 4
        out.write(binascii.a2b_base64(data[:usable], strict_mode=True))
        padded = b"=" in data[:usable]
        carry = data[usable:]
    if carry:
        raise binascii.Error("incomplete group")


def cut_out(raw: bytes) -> tuple[bytes, Cutouts]:
    """Return the skeleton of ``raw`` with long base64 runs as stand-ins."""
    nonce = secrets.token_hex(8)
    while nonce.encode() in raw:
        nonce = secrets.token_hex(8)

    pieces: list[bytes] = []
    spans: dict[str, tuple[int, int]] = {}
    position = 0
    for match in _BASE64_RUN.finditer(raw):
        start, end = _whole_lines(raw, match.start(), match.end())
        if end - start < MIN_CUT_BYTES:
            continue
        # 32 base64 characters: decoded by mail-parser without a defect.
        stand_in = f"MAILBOTCUT{nonce}N{len(spans):05d}"
        pieces += [raw[position:start], stand_in.encode()]
        spans[stand_in] = (start, end)
        position = end
    log.debug("large message: %d base64 runs parsed as stand-ins", len(spans))
    cutouts = Cutouts(raw, spans, re.compile(f"MAILBOTCUT{nonce}N[0-9]{{5}}"))
    if not spans:
        return raw, cutouts
    pieces.append(raw[position:])
    return b"".join(pieces), cutouts


def _whole_lines(raw: bytes, start: int, end: int) -> tuple[int, int]:
    # A run starts inside a line (the lookbehind), so the region starts at the
    # next line; blank lines there may end a part's headers and stay.
    start = raw.find(b"\n", start, end) + 1
    while start < end and raw[start] in b"\r\n":
        start += 1

    # The region leaves out its last line end, which may belong to a boundary.
    last = raw.rfind(b"\n", start, end)
    if last <= start:
        return start, start
    return start, last - 1 if raw[last - 1] == 0x0D else last
