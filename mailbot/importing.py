"""Import: feeds .eml files, Maildir folders and mbox files through intake.

Messages are read one at a time in a stable order (Maildir: ``new`` then ``cur``,
by file name), so a backlog of years of mail never has to fit in memory.
"""

from __future__ import annotations

import mailbox as stdlib_mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailbot.errors import CommandError


@dataclass(frozen=True)
class ImportedFile:
    source: str
    # None when the file could not be read; ``error`` says why.
    raw: bytes | None
    error: str = ""


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _is_mbox(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(5) == b"From "
    except OSError:
        return False


def count_messages(paths: list[Path]) -> int:
    """How many messages the paths hold, for the progress bar."""
    return sum(1 for _ in _locations(paths))


def read_messages(paths: list[Path]) -> Iterator[ImportedFile]:
    """Every message under the paths, as raw bytes with where it came from."""
    for source, reader in _locations(paths):
        try:
            raw = reader()
        except OSError as exc:
            yield ImportedFile(source, None, exc.strerror or str(exc))
            continue
        yield ImportedFile(source, raw)


def _locations(paths: list[Path]) -> Iterator[tuple[str, Callable[[], bytes]]]:
    for path in paths:
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        if path.is_dir() and _is_maildir(path):
            yield from _maildir(path)
        elif path.is_dir():
            # Every file, whatever its name: exports name messages .eml, .msg.txt
            # or nothing at all. Hidden files are editors' and tools' own.
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
            yield from ((f"file:{p}", _FileReader(p)) for p in files)
        elif _is_mbox(path):
            yield from _mbox(path)
        else:
            yield f"file:{path}", _FileReader(path)


class _FileReader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> bytes:
        return self.path.read_bytes()


def _maildir(path: Path) -> Iterator[tuple[str, _FileReader]]:
    for sub in ("new", "cur"):
        files = sorted(p for p in (path / sub).iterdir() if p.is_file())
        for file in files:
            if not file.name.startswith("."):
                yield f"maildir:{file}", _FileReader(file)


class _MboxReader:
    def __init__(self, box: stdlib_mailbox.mbox, key: str) -> None:
        self.box = box
        self.key = key

    def __call__(self) -> bytes:
        return self.box.get_bytes(self.key)


def _mbox(path: Path) -> Iterator[tuple[str, _MboxReader]]:
    box = stdlib_mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.keys()):
            yield f"mbox:{path}#{index}", _MboxReader(box, key)
    finally:
        box.close()
