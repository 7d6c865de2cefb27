"""HTML bodies of received mail: readable text for staff and safe markup to keep.

Part of the parsing step. Reads an HTML body as text; returns either its readable
text (inscriptis keeps list bullets and table layout) or the markup reduced by
nh3 to inert formatting: no scripts, no event handlers, no forms or frames, and
no image fetched from a remote server (which would tell the sender it was read).
"""

from __future__ import annotations

import html as entities
import logging
import re

import nh3
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

log = logging.getLogger(__name__)

_SAFE_TAGS = frozenset(nh3.ALLOWED_TAGS) - {"area", "map"}
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_IMAGE_SOURCES = ("cid:", "data:image/")
_UNUSABLE = re.compile(r"[\x00\ud800-\udfff]")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
_INVISIBLE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_PROCESSING_INSTRUCTION = re.compile(r"<\?.*?\?>", re.DOTALL)
# Links keep their address (a citizen's evidence is often a Drive or YouTube
# link); the strict profile does not indent the nested <div>s of Gmail and Yahoo.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True)
# How inscriptis writes a link: [text](address), the address with at most one
# level of parentheses (Wikipedia's do have them).
_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))*)\)")


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML body, blank lines collapsed."""
    html = _usable(html)
    # lxml refuses a str that declares its encoding (<?xml ... encoding=...?>).
    if "<?" in html:
        html = _PROCESSING_INSTRUCTION.sub("", html)
    text = _tidy(_LINK.sub(_link_text, get_text(html, _CONFIG)))

    # lxml gives up on very deep nesting and inscriptis then returns nothing.
    if not text and _TAG.sub("", html).strip():
        log.debug("inscriptis returned no text; tags stripped instead")
        text = _tidy(entities.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", html))))
    return text


def _link_text(match: re.Match[str]) -> str:
    text, address = match[1].strip(), match[2]
    # An anchor ("#top"), a relative or a script link says nothing to staff.
    if not address.lower().startswith(_LINK_SCHEMES):
        return text
    shown = address.removeprefix("mailto:").removeprefix("tel:")
    if not text or text in (address, shown):
        return shown
    return f"{text} <{shown}>"


def sanitise_html(html: str) -> str:
    """Return the HTML reduced to inert formatting, links and embedded images."""
    cleaned = nh3.clean(
        _usable(html),
        tags=set(_SAFE_TAGS),
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        attribute_filter=_keep_attribute,
    )
    return cleaned.strip()


def _usable(html: str) -> str:
    # NUL and lone surrogates make lxml and nh3 fail or invent characters.
    if not _UNUSABLE.search(html):
        return html
    return _UNUSABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", html)


def _tidy(text: str) -> str:
    text = _TRAILING_SPACE.sub("\n", text.replace("\r\n", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    lowered = value.strip().lower()
    if tag == "img" and attribute == "src":
        return value if lowered.startswith(_IMAGE_SOURCES) else None

    if attribute in ("href", "cite"):
        return value if lowered.startswith(_LINK_SCHEMES) else None
    return value
