"""Tests of large-message parsing: long base64 runs parsed as stand-ins.

The messages are generated (a fixture file of several megabytes would bloat the
repository); each lean parse is compared with the whole parse of the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mailbot.largemail import LARGE_MESSAGE_BYTES, cut_out
from mailbot.parsing import parse_message

NOW = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
WHOLE = 10**12


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def base64_body(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def head(subject: str, boundary: str) -> bytes:
    return (
        "From: Warga <warga@example.com>\r\nTo: pengaduan@porong.example.go.id\r\n"
        f"Subject: {subject}\r\nMessage-ID: <large-1@example.com>\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    ).encode()


def text_part(text: str, boundary: str = "b") -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


def file_part(name: str, data: bytes, boundary: str = "b") -> bytes:
    return (
        f'--{boundary}\r\nContent-Type: image/jpeg; name="{name}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
    ).encode() + base64_body(data)


def photo_complaint(data: bytes, boundary: str = "b") -> bytes:
    return (
        head("Foto jalan berlubang", boundary)
        + text_part("Jalan berlubang di depan balai desa, foto terlampir.", boundary)
        + file_part("jalan.jpg", data, boundary)
        + f"--{boundary}--\r\n".encode()
    )


def test_large_message_attachment_is_decoded_from_the_raw_bytes() -> None:
    photo = payload(6_000_000, seed=6)
    raw = photo_complaint(photo)

    mail = parse_message(raw, now=NOW)

    assert len(raw) > LARGE_MESSAGE_BYTES
    assert mail.text == "Jalan berlubang di depan balai desa, foto terlampir."
    assert [(a.filename, a.content_type, a.inline) for a in mail.attachments] == [
        ("jalan.jpg", "image/jpeg", False)
    ]
    assert len(mail.attachments[0].payload) == 6_000_000
    assert (
        hashlib.sha256(mail.attachments[0].payload).hexdigest()
        == hashlib.sha256(photo).hexdigest()
    )
    assert mail.defects == ()
    assert mail == parse_message(raw, now=NOW, large_from=WHOLE)


def test_skeleton_keeps_headers_and_boundaries_and_cuts_the_run() -> None:
    raw = photo_complaint(payload(300_000, seed=1))

    skeleton, cutouts = cut_out(raw)

    assert len(cutouts.spans) == 1
    assert re.sub(rb"MAILBOTCUT[0-9a-f]{16}N00000", b"<cut>", skeleton) == (
        head("Foto jalan berlubang", "b")
        + text_part("Jalan berlubang di depan balai desa, foto terlampir.")
        + b'--b\r\nContent-Type: image/jpeg; name="jalan.jpg"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="jalan.jpg"\r\n\r\n'
        b"<cut>\r\n--b--\r\n"
    )


def single_part_image() -> bytes:
    head = (
        b"From: warga@example.com\r\nTo: pengaduan@porong.example.go.id\r\n"
        b"Subject: Foto\r\nMessage-ID: <single-1@example.com>\r\n"
        b"Date: Mon, 05 Jan 2026 09:00:00 +0700\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return head + base64_body(payload(300_000, seed=9))


def cut_short_without_close_boundary() -> bytes:
    return photo_complaint(payload(300_000, seed=10))[:-40_000]


def lf_line_ends() -> bytes:
    return photo_complaint(payload(300_000, seed=2)).replace(b"\r\n", b"\n")


def two_attachments_without_final_line_end() -> bytes:
    return (
        head("Dua foto", "b")
        + file_part("satu.jpg", payload(300_000, seed=3))
        + file_part("dua.jpg", payload(400_000, seed=4))[:-2]
        + b"\r\n--b--"
    )


def concatenated_base64() -> bytes:
    # Two encoder outputs glued together: padding in the middle of the part.
    glued = base64_body(payload(200_000, seed=5)) + base64_body(payload(200_001, 6))
    return (
        head("Lampiran rusak", "b")
        + file_part("rusak.jpg", b"")
        + glued
        + file_part("utuh.jpg", payload(300_000, seed=7))
        + b"--b--\r\n"
    )


def forwarded_message() -> bytes:
    inner = photo_complaint(payload(300_000, seed=8), boundary="inner")
    return (
        head("Fwd: keluhan warga", "b")
        + text_part("Mohon ditindaklanjuti.")
        + b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"\r\n--b--\r\n"
    )


def long_plain_text_lines() -> bytes:
    # Base64-looking text in a text part gets its original text back.
    lines = "\r\n".join(f"NIK{n:013d}" for n in range(20_000))
    return head("Daftar NIK", "b") + text_part(lines) + b"--b--\r\n"


def quoted_printable_attachment() -> bytes:
    part_head = (
        b"--b\r\nContent-Type: text/csv; name=tabel.csv\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"Content-Disposition: attachment; filename=tabel.csv\r\n\r\n"
    )
    lines = b"\r\n".join(b"baris%06d=3D" % n for n in range(30_000))
    return head("Tabel", "b") + part_head + lines + b"\r\n--b--\r\n"


@pytest.mark.parametrize(
    "build",
    [
        single_part_image,
        cut_short_without_close_boundary,
        lf_line_ends,
        two_attachments_without_final_line_end,
        concatenated_base64,
        forwarded_message,
        long_plain_text_lines,
        quoted_printable_attachment,
    ],
)
def test_lean_parse_equals_whole_parse(build: Callable[[], bytes]) -> None:
    raw = build()

    lean = parse_message(raw, now=NOW, large_from=0)
    whole = parse_message(raw, now=NOW, large_from=WHOLE)

    assert len(cut_out(raw)[0]) < 2_000
    assert lean == whole
    assert sum(len(a.payload) for a in lean.attachments) + len(lean.text) > 250_000
