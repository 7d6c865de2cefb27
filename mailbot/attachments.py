"""Attachment step: safe file names and content-addressed storage.

Reads the attachments that parsing extracted from a received message; writes each
payload once under ``data_dir/attachments/ab/cdef...`` (named by its SHA-256), or
quarantines it, without writing, when it is larger than the configured limit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_FILENAME_BYTES = 150
MAX_EXTENSION_CHARS = 12

# Extensions for generated names; a fixed table, because `mimetypes` answers
# differently depending on the host's /etc/mime.types.
_EXTENSIONS = {
    "application/ics": "ics",
    "application/ms-tnef": "dat",
    "application/msword": "doc",
    "application/pdf": "pdf",
    "application/pkcs7-mime": "p7m",
    "application/pkcs7-signature": "p7s",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-tnef": "dat",
    "application/x-pkcs7-mime": "p7m",
    "application/x-pkcs7-signature": "p7s",
    "application/zip": "zip",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "message/delivery-status": "txt",
    "message/disposition-notification": "txt",
    "message/global": "eml",
    "message/rfc822": "eml",
    "text/calendar": "ics",
    "text/csv": "csv",
    "text/html": "html",
    "text/plain": "txt",
    "text/rfc822-headers": "txt",
}

# Windows refuses these stems whatever the extension (CON.txt is the console).
_RESERVED_STEMS = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{n}" for n in "123456789¹²³"]
    + [f"LPT{n}" for n in "123456789¹²³"]
)
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*]+')
_EXTENSION = re.compile(rf"\.[A-Za-z0-9]{{1,{MAX_EXTENSION_CHARS}}}$")


@dataclass(frozen=True)
class Attachment:
    """One file carried by a received message, its payload decoded."""

    filename: str
    content_type: str
    payload: bytes
    inline: bool


@dataclass(frozen=True)
class StoredAttachment:
    """Where an attachment's bytes went; ``path`` is relative to ``data_dir``."""

    filename: str
    content_type: str
    size: int
    sha256: str
    path: str | None
    quarantined: bool
    reason: str


def generated_filename(index: int, content_type: str) -> str:
    """Return the name given to an attachment whose own name is unusable."""
    extension = _EXTENSIONS.get(content_type.lower(), "bin")
    return f"lampiran-{index}.{extension}"


def sanitise_filename(name: str, *, index: int, content_type: str) -> str:
    """Return ``name`` made safe to show and to write on any file system."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_CHARS.sub("_", " ".join(name.split()))

    # Leading dots hide files or climb directories; Windows drops trailing ones.
    name = name.strip(". ")
    if not name.strip("_"):
        return generated_filename(index, content_type)

    if name.split(".")[0].rstrip(" ").upper() in _RESERVED_STEMS:
        name = f"_{name}"
    return _bounded(name)


def _bounded(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name

    match = _EXTENSION.search(name)
    extension = match.group() if match else ""
    stem = name[: len(name) - len(extension)]
    budget = MAX_FILENAME_BYTES - len(extension)
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ")
    return stem + extension


def store_attachments(
    attachments: Sequence[Attachment], data_dir: Path, *, max_bytes: int
) -> list[StoredAttachment]:
    """Write each attachment once, by content hash; quarantine oversized ones."""
    return [_store(attachment, data_dir, max_bytes) for attachment in attachments]


def _store(attachment: Attachment, data_dir: Path, max_bytes: int) -> StoredAttachment:
    size = len(attachment.payload)
    digest = hashlib.sha256(attachment.payload).hexdigest()
    if size > max_bytes:
        log.warning("attachment %s quarantined: %d bytes", digest[:12], size)
        reason = f"melebihi batas {max_bytes} byte ({size} byte); tidak disimpan"
        return StoredAttachment(
            attachment.filename,
            attachment.content_type,
            size,
            digest,
            None,
            True,
            reason,
        )

    relative = Path("attachments", digest[:2], digest[2:])
    _write_once(data_dir / relative, attachment.payload)
    return StoredAttachment(
        attachment.filename,
        attachment.content_type,
        size,
        digest,
        relative.as_posix(),
        False,
        "",
    )


def _write_once(target: Path, payload: bytes) -> None:
    if target.is_file() and target.stat().st_size == len(payload):
        return

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        # No fsync per file: intake makes attachments durable together with
        # the raw archive, one sync per batch (archive.sync_archive).
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    log.debug("stored attachment %s (%d bytes)", target.name[:10], len(payload))
