"""HTML bodies of received mail: readable text for staff and safe markup to keep.

Part of the parsing step. Reads an HTML body as text; returns either its readable
text (inscriptis keeps list bullets and table layout) or the markup reduced by
nh3 to inert formatting: no scripts, no event handlers, no forms or frames, and
no image fetched from a remote server (which would tell the sender it was read).
"""

from __future__ import annotations

import logging
import re

import nh3
from inscriptis import get_text

log = logging.getLogger(__name__)

_SAFE_TAGS = frozenset(nh3.ALLOWED_TAGS) - {"area", "map"}
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_IMAGE_SOURCES = ("cid:", "data:image/")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML body, blank lines collapsed."""
    text = get_text(html.replace("\x00", ""))

    text = _TRAILING_SPACE.sub("\n", text.replace("\r\n", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def sanitise_html(html: str) -> str:
    """Return the HTML reduced to inert formatting, links and embedded images."""
    cleaned = nh3.clean(
        html.replace("\x00", ""),
        tags=set(_SAFE_TAGS),
        url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
        attribute_filter=_keep_attribute,
    )
    return cleaned.strip()


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    lowered = value.strip().lower()
    if tag == "img" and attribute == "src":
        return value if lowered.startswith(_IMAGE_SOURCES) else None

    if attribute in ("href", "cite"):
        return value if lowered.startswith(_LINK_SCHEMES) else None
    return value
