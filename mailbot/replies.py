"""Reply text: only what the person wrote in this message, without the history.

Reads the plain text of a received reply and returns its new part. The quoted
history and signatures are cut in two passes: first the Indonesian (and the
multi-line English) attribution lines, header blocks and "sent from" lines that
mail-parser-reply does not know, then mail-parser-reply itself for the English
formats and signatures it ships. Lines quoted with ``>`` are dropped.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailMessage

# Gmail, Android and Yahoo attribution lines: "Pada <date>, <name> menulis:" and
# "On <date>, <name> wrote:"; Gmail wraps long ones, so up to two line breaks.
_ATTRIBUTION = re.compile(
    r"^[ \t]*(?:Pada|On)\b[^\n]*(?:\n[^\n>]*){0,2}?\b(?:menulis|wrote)\s*:[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# The lines that open a forwarded message: Gmail, Indonesian Gmail, Apple Mail.
_FORWARD_MARKERS = (
    r"Forwarded message|Pesan terusan|Begin forwarded message"
    r"|Awal pesan yang diteruskan"
)
# The separator lines of Outlook, Yahoo and webmails, Indonesian and English.
_SEPARATOR = re.compile(
    r"^[ \t]*(?:-{3,}|_{3,})?[ \t]*"
    rf"(?:Original Message|Pesan Asli|Pesan Awal|{_FORWARD_MARKERS})"
    r"[ \t]*:?[ \t]*(?:-{3,}|_{3,})?[ \t]*$|^[ \t]*_{20,}[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# Outlook's header block: "Dari:/From:" followed within three lines by a date.
_HEADER_BLOCK = re.compile(
    r"^[ \t*]*(?:Dari|From)[ \t*]*:[^\n]*\n(?:[^\n]*\n){0,2}?"
    r"[ \t*]*(?:Dikirim|Terkirim|Tanggal|Sent|Date)[ \t*]*:",
    re.MULTILINE | re.IGNORECASE,
)
# Mobile footers: "Dikirim dari iPhone saya", "Sent from my Galaxy".
_SENT_FROM = re.compile(
    r"^[ \t]*(?:Dikirim dari|Terkirim dari|Sent from my|Get Outlook for)\b.*$",
    re.MULTILINE | re.IGNORECASE,
)
# Only the markers of a forward: what follows is a message passed on, not our
# own letter quoted back.
_FORWARD = re.compile(
    rf"^[ \t]*(?:-{{3,}}|_{{3,}})?[ \t]*(?:{_FORWARD_MARKERS})[ \t]*:?[ \t]*"
    r"(?:-{3,}|_{3,})?[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|bls|balas)\s*:\s*)*(?:fw|fwd|tr|wg|terusan)\s*:", re.IGNORECASE
)
_QUOTED = re.compile(r"^[ \t]*>.*(?:\n|$)", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")


def new_text(text: str) -> str:
    """The part of a reply its sender wrote, with history and signature removed."""
    plain = _SENT_FROM.sub("", _own_lines(text))

    latest = _library_cut(plain)
    return _BLANK_RUNS.sub("\n\n", latest).strip()


def without_history(text: str) -> str:
    """What the sender wrote, signature included, without quoted or forwarded mail.

    A NIK in a citizen's sign-off is theirs; one in a message they forward or
    quote belongs to someone else.
    """
    return _BLANK_RUNS.sub("\n\n", _own_lines(text)).strip()


def forwarded(text: str, subject: str = "") -> str:
    """The message a reply passes on, from its "Forwarded message" line; or "".

    Outlook forwards with the same header block as its replies; there the
    subject ("FW:", "Fwd:", "TR:") says that what follows is passed on.
    """
    plain = text.replace("\r\n", "\n").replace("\r", "\n")
    match = _FORWARD.search(plain)
    if match is None and _FORWARD_SUBJECT.match(subject):
        found = [m for p in (_SEPARATOR, _HEADER_BLOCK) if (m := p.search(plain))]
        match = min(found, key=lambda m: m.start()) if found else None
    return plain[match.start() :].strip() if match else ""


def _own_lines(text: str) -> str:
    plain = text.replace("\r\n", "\n").replace("\r", "\n")

    head = _before_history(plain)
    if not head.strip():
        # Bottom-posted (Thunderbird, some webmails): the reply follows the quote.
        head = _ATTRIBUTION.sub("", plain)
    return _QUOTED.sub("", head)


def _before_history(text: str) -> str:
    starts = [
        match.start()
        for pattern in (_ATTRIBUTION, _SEPARATOR, _HEADER_BLOCK)
        if (match := pattern.search(text)) is not None
    ]
    return text[: min(starts)] if starts else text


def _library_cut(text: str) -> str:
    if not text.strip():
        return ""
    # keep_hyphen_lists: a staff answer often lists steps with "- "; the
    # library's default would take the first such line for a signature.
    message = EmailMessage(text=text, languages=["en"], keep_hyphen_lists=True)
    replies = message.read().replies
    if not replies:
        return text
    body: str = replies[0].body
    return body


# A closing line of a staff answer ("Salam,", "Hormat kami,", "Terima kasih,")
# that the lines of a sign-off follow: name, post, phone number.
_VALEDICTION = re.compile(
    r"^[ \t]*(?:salam(?: hormat)?|hormat (?:saya|kami)|wassalam\w*(?: [\w.]+)*"
    r"|terima ?kasih|matur nuwun|regards|best regards)[ \t,.!]*$",
    re.IGNORECASE,
)
_SIGN_OFF_LINES = 4
_SIGN_OFF_WIDTH = 60


def without_sign_off(text: str) -> str:
    """A staff answer without the sign-off after its closing line.

    The letters close with the office's own "Hormat kami"; a staff member's
    name, post and personal phone number are not for the complainant. A
    closing line that ends the text, with nothing after it, stays.
    """
    lines = text.rstrip().split("\n")
    for index in range(max(len(lines) - _SIGN_OFF_LINES - 1, 0), len(lines) - 1):
        if not _VALEDICTION.match(lines[index]):
            continue
        after = [line for line in lines[index + 1 :] if line.strip()]
        kept = "\n".join(lines[:index]).rstrip()
        if kept and after and all(len(line) <= _SIGN_OFF_WIDTH for line in after):
            return kept
    return text.rstrip()


# "Yth. Bapak Budi," or "Kepada Yth. Ibu Siti," on the answer's first line.
_SALUTATION = re.compile(
    r"^[ \t]*(?:kepada[ \t]+)?yth\b\.?[^\n]{0,80}[,:]?[ \t]*\n", re.IGNORECASE
)


def without_salutation(text: str) -> str:
    """A staff answer without its own "Yth. ..." line: the letter greets the
    complainant already, and a second greeting reads as a mistake."""
    stripped = text.lstrip()
    kept = _SALUTATION.sub("", stripped, count=1)
    return kept.lstrip() if kept != stripped and kept.strip() else text
