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
# A number given as the family card's (KK) has the same shape, but is no KTP.
_FAMILY_CARD = re.compile(r"(?:\bkk|kartu keluarga)\b\D{0,12}$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[ \t./-]")
# A NIK starts with a province code (Dukcapil), then regency and district, then
# the birth date DDMMYY (40 added to the day for women) and a serial number.
_PROVINCES = frozenset(
    [
        *range(11, 20),
        21,
        *range(31, 37),
        *range(51, 54),
        *range(61, 66),
        *range(71, 77),
        81,
        82,
        *range(91, 98),
    ]
)
# A mobile number: "0812-3456-7890", "+62 812 3456 7890", "(+62) 812 3456 7890",
# "0812.3456.7890", "(0813) 1111-2222"; ten digits at least (``is_phone``).
PHONE_NUMBER = re.compile(
    r"(?<![\d+])\(?((?:\+?62\)?[ -]?|0)8\d)[\d\-. )]{5,12}(\d{2})(?!\d)"
)
_KTP_WORDS = re.compile(r"\b(?:e-?ktp|ktp|kartu tanda penduduk)\b", re.IGNORECASE)


def carries_identity(text: str, attachment_names: Iterable[str]) -> bool:
    """A NIK in the text, or an attachment that is by its name a KTP scan."""
    for match in _NIK.finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        if _is_nik(_digits(match)) and not _FAMILY_CARD.search(before):
            return True
    return any(_KTP_WORDS.search(name.replace("_", " ")) for name in attachment_names)


def mask(text: str) -> str:
    """The text with NIKs and phone numbers partly hidden."""
    text = _NIK.sub(_masked_nik, text)
    return PHONE_NUMBER.sub(_masked_phone, text)


def is_phone(match: re.Match[str]) -> bool:
    """Whether a PHONE_NUMBER match has the ten digits of a mobile number;
    office hours ("0830 - 0945") have fewer."""
    return sum(char.isdigit() for char in match.group(0)) >= 10


def _masked_phone(match: re.Match[str]) -> str:
    if not is_phone(match):
        return match.group(0)
    return f"{match.group(1)}******{match.group(2)}"


def _masked_nik(match: re.Match[str]) -> str:
    # Masked on the province alone: a NIK mistyped in its date is still one,
    # while a letter number ("470/123/438.6.12/2026") keeps its digits.
    digits = _digits(match)
    if int(digits[:2]) not in _PROVINCES:
        return match.group(0)
    return f"{digits[:6]}******{digits[-4:]}"


def _digits(match: re.Match[str]) -> str:
    return _SEPARATORS.sub("", match.group(0))


def _is_nik(digits: str) -> bool:
    # A card, account or token number of sixteen digits is not identity.
    day, month = int(digits[6:8]), int(digits[8:10])
    day -= 40 if day > 40 else 0
    return int(digits[:2]) in _PROVINCES and 1 <= day <= 31 and 1 <= month <= 12
