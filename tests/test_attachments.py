"""Tests of attachment naming and content-addressed storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mailbot.attachments import (
    Attachment,
    StoredAttachment,
    sanitise_filename,
    store_attachments,
)


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("foto jalan.jpg", "image/jpeg", "foto jalan.jpg"),
        ("../../etc/passwd", "text/plain", "passwd"),
        ("C:\\Users\\budi\\KTP.pdf", "application/pdf", "KTP.pdf"),
        ("..", "application/octet-stream", "lampiran-2.bin"),
        ("", "image/png", "lampiran-2.png"),
        ("\x00\x01", "text/calendar", "lampiran-2.ics"),
        ("///", "message/rfc822", "lampiran-2.eml"),
        ("CON.txt", "text/plain", "_CON.txt"),
        ("nul", "application/octet-stream", "_nul"),
        ("com1.pdf", "application/pdf", "_com1.pdf"),
        ("lpt9", "application/octet-stream", "_lpt9"),
        ("surat\r\n pengantar.pdf", "application/pdf", "surat pengantar.pdf"),
        ('a<b>c:d"e|f?g*h.doc', "application/msword", "a_b_c_d_e_f_g_h.doc"),
        (" .hidden. ", "text/plain", "hidden"),
        ("Fro\u0308sche.txt", "text/plain", "Frösche.txt"),
    ],
)
def test_sanitise_filename(name: str, content_type: str, expected: str) -> None:
    result = sanitise_filename(name, index=2, content_type=content_type)

    assert result == expected


def test_sanitise_filename_bounds_length_and_keeps_extension() -> None:
    name = "laporan-" + "sangat-panjang-" * 20 + ".pdf"

    result = sanitise_filename(name, index=1, content_type="application/pdf")

    assert len(result.encode("utf-8")) == 150
    assert result == ("laporan-" + "sangat-panjang-" * 20)[:146] + ".pdf"


def test_sanitise_filename_cuts_multibyte_names_on_character_boundaries() -> None:
    name = "ñ" * 100 + ".jpeg"

    result = sanitise_filename(name, index=1, content_type="image/jpeg")

    assert result == "ñ" * 72 + ".jpeg"


def test_store_attachments_writes_by_content_hash(tmp_path: Path) -> None:
    payload = b"%PDF-1.4 surat pengantar RT"
    digest = hashlib.sha256(payload).hexdigest()
    attachment = Attachment("surat.pdf", "application/pdf", payload, False)

    stored = store_attachments([attachment], tmp_path, max_bytes=1000)

    relative = f"attachments/{digest[:2]}/{digest[2:]}"
    assert stored == [
        StoredAttachment(
            "surat.pdf", "application/pdf", len(payload), digest, relative, False, ""
        )
    ]
    assert (tmp_path / relative).read_bytes() == payload


def test_store_attachments_is_idempotent(tmp_path: Path) -> None:
    first = Attachment("a.jpg", "image/jpeg", b"\xff\xd8same bytes", True)
    second = Attachment("b.jpg", "image/jpeg", b"\xff\xd8same bytes", False)

    stored = store_attachments([first, second], tmp_path, max_bytes=1000)
    again = store_attachments([first], tmp_path, max_bytes=1000)

    files = [p for p in (tmp_path / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 1
    assert stored[0].path == stored[1].path == again[0].path
    assert [s.filename for s in stored] == ["a.jpg", "b.jpg"]


def test_store_attachments_quarantines_oversized_files(tmp_path: Path) -> None:
    attachment = Attachment("video.mp4", "video/mp4", b"x" * 11, False)

    stored = store_attachments([attachment], tmp_path, max_bytes=10)

    assert stored == [
        StoredAttachment(
            "video.mp4",
            "video/mp4",
            11,
            hashlib.sha256(b"x" * 11).hexdigest(),
            None,
            True,
            "melebihi batas 10 byte (11 byte); tidak disimpan",
        )
    ]
    assert not (tmp_path / "attachments").exists()


def test_store_attachments_leaves_no_temporary_files(tmp_path: Path) -> None:
    attachment = Attachment("a.txt", "text/plain", b"isi", False)

    store_attachments([attachment], tmp_path, max_bytes=100)

    names = [p.name for p in (tmp_path / "attachments").rglob("*") if p.is_file()]
    assert names == [hashlib.sha256(b"isi").hexdigest()[2:]]
