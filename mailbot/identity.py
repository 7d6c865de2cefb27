"""The complainant's identity: whether a complaint carries it, and masking it.

The service standard requires the complainant's official identity (KTP). A NIK
is the 16-digit number on it; ``mask`` hides NIKs and phone numbers wherever text
leaves the ticket for logs, digests or listings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Sixteen digits, as printed or in the groups people type them in:
# "3515 0123 4567 0001", "35.15.01.230587.0004", "3515-01-230587-0004",
# "3515/0123/4567/0001", tabs or two spaces between groups; glued to a word
# ("NIK.3515...", "KTP-3515..."), but not part of a longer number.
_NIK = re.compile(r"(?<!\d)(?<!\d[./-])\d(?:[ \t./-]{0,2}\d){15}(?!\d|[./-]\d)")
_SEPARATORS = re.compile(r"[ \t./-]")
PHONE_NUMBER = re.compile(
    r"(?<![\d+])((?:\+62[ -]?|62|0)8\d)[\d\- ]{6,11}(\d{2})(?!\d)"
)
_KTP_WORDS = re.compile(r"\b(?:e-?ktp|ktp|kartu tanda penduduk)\b", re.IGNORECASE)


def carries_identity(text: str, attachment_names: Iterable[str]) -> bool:
    """A NIK in the text, or an attachment that is by its name a KTP scan."""
    if _NIK.search(text):
        return True
    return any(_KTP_WORDS.search(name.replace("_", " ")) for name in attachment_names)


def mask(text: str) -> str:
    """The text with NIKs and phone numbers partly hidden."""
    text = _NIK.sub(_masked_nik, text)
    return PHONE_NUMBER.sub(r"\1******\2", text)


def _masked_nik(match: re.Match[str]) -> str:
    digits = _SEPARATORS.sub("", match.group(0))
    return f"{digits[:6]}******{digits[-4:]}"
