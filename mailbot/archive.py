"""The raw mail archive: every received message is written here before anything else.

Files are named by the SHA-256 of their bytes (``raw/ab/<sha>.eml``), so the
same message fetched twice is stored once, and a write that dies halfway never
leaves a partial file under the final name.

One level of 256 folders, as git keeps its objects: a second level made almost
every new message create a folder, which cost more than writing the file.
Archives from before keep their ``raw/ab/cd/`` paths, which the database holds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArchivedMail:
    sha256: str
    path: Path
    size: int


def archive_path(data_dir: Path, sha256: str) -> Path:
    """Where the raw bytes with this digest live."""
    return data_dir / "raw" / sha256[:2] / f"{sha256}.eml"


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write a file under a temporary name, flush it to disk, then rename it."""
    # Most folders exist already; mkdir would fail and recover each time.
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # A half-written file must not stay behind, on a disk already full.
        temporary.unlink(missing_ok=True)
        raise


def _legacy_path(data_dir: Path, sha256: str) -> Path:
    return data_dir / "raw" / sha256[:2] / sha256[2:4] / f"{sha256}.eml"


def archive(data_dir: Path, raw: bytes, *, durable: bool = True) -> ArchivedMail:
    """Keep the raw bytes; idempotent for the same bytes."""
    sha256 = hashlib.sha256(raw).hexdigest()
    legacy = _legacy_path(data_dir, sha256)
    # Mail archived before the one-level layout stays where the database has it.
    if legacy.is_file() and legacy.stat().st_size == len(raw):
        return ArchivedMail(sha256, legacy, len(raw))

    path = archive_path(data_dir, sha256)
    # A file cut short by a crash before sync_archive() is written again.
    if not path.exists() or path.stat().st_size != len(raw):
        write_atomically(path, raw, durable=durable)
    return ArchivedMail(sha256, path, len(raw))


def read_archived(path: Path) -> bytes:
    """The raw bytes of an archived message."""
    return path.read_bytes()


def sync_archive() -> None:
    """Make every archive file written so far durable, with one system-wide sync.

    Intake writes raw mail and attachments without a per-file fsync and calls
    this once per batch, before the batch is marked handled on the server and before the
    poller moves its last UID. A crash before the sync loses at most files
    whose messages are still on the server and not yet past the last UID: they
    are fetched again, recognised as duplicates, and archive() writes the
    missing file again because it checks for the file before de-duplication.
    An attachment lost that way is still inside its archived raw message.
    """
    os.sync()
