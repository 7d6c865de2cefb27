"""The complainant's identity: whether a complaint carries it, and masking it.

The service standard requires the complainant's official identity (KTP). A NIK
is the 16-digit number on it; ``mask`` hides NIKs and phone numbers wherever text
leaves the ticket for logs, digests or listings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NIK = re.compile(r"(?<!\d)(\d{6})\d{6}(\d{4})(?!\d)")
_PHONE = re.compile(r"(?<![\d+])((?:\+62[ -]?|62|0)8\d)[\d\- ]{6,11}(\d{2})(?!\d)")
_KTP_WORDS = re.compile(r"\b(?:e-?ktp|ktp|kartu tanda penduduk)\b", re.IGNORECASE)


def carries_identity(text: str, attachment_names: Iterable[str]) -> bool:
    """A NIK in the text, or an attachment that is by its name a KTP scan."""
    if _NIK.search(text):
        return True
    return any(_KTP_WORDS.search(name.replace("_", " ")) for name in attachment_names)


def mask(text: str) -> str:
    """The text with NIKs and phone numbers partly hidden."""
    text = _NIK.sub(r"\1******\2", text)
    return _PHONE.sub(r"\1******\2", text)
