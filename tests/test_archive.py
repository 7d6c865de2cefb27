"""The raw archive: one level of folders, and mail archived before kept where it is."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from mailbot.archive import archive, write_atomically

RAW = b"From: budi@example.com\r\nSubject: Jalan rusak\r\n\r\nIsi.\r\n"
SHA = hashlib.sha256(RAW).hexdigest()


def test_new_mail_is_kept_under_one_folder_level(tmp_path: Path) -> None:
    kept = archive(tmp_path, RAW)

    assert kept.path == tmp_path / "raw" / SHA[:2] / f"{SHA}.eml"
    assert (kept.sha256, kept.size, kept.path.read_bytes()) == (SHA, len(RAW), RAW)


def test_mail_archived_in_the_two_level_layout_is_not_written_again(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "raw" / SHA[:2] / SHA[2:4] / f"{SHA}.eml"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(RAW)

    kept = archive(tmp_path, RAW)

    assert kept.path == legacy
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.eml")) == [
        Path("raw", SHA[:2], SHA[2:4], f"{SHA}.eml")
    ]


def test_a_legacy_file_cut_short_is_written_again_in_the_new_layout(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "raw" / SHA[:2] / SHA[2:4] / f"{SHA}.eml"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(RAW[:10])

    kept = archive(tmp_path, RAW)

    assert kept.path == tmp_path / "raw" / SHA[:2] / f"{SHA}.eml"
    assert kept.path.read_bytes() == RAW


def test_a_write_that_fails_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trial 29: a full disk kept each half-written ".tmp" file.
    target = tmp_path / "raw" / "ab" / "abc.eml"

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mailbot.archive.os.replace", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, b"Subject: x\r\n\r\nisi\r\n")

    assert list((tmp_path / "raw" / "ab").iterdir()) == []
