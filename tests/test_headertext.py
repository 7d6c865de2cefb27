"""Tests of header text decoding, through parse_message: RFC 2047, 2231, charsets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbot.headertext import header_text
from mailbot.parsing import Attachment, ParsedMail, parse_message

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def parse_fixture(scenario: str) -> ParsedMail:
    return parse_message((DATA / f"parsing-{scenario}.eml").read_bytes(), now=NOW)


# Gap 1: folded headers keep their CRLF in mail-parser.


def test_folded_subject_message_id_and_attachment_name_are_one_line() -> None:
    mail = parse_fixture("folded-headers")

    assert mail.subject == (
        "Keluhan jalan rusak di Desa Kebonagung yang sudah lama tidak diperbaiki"
    )
    assert mail.message_id == "folded-1@example.com"
    assert mail.attachments == (
        Attachment(
            "foto jalan rusak Kebonagung.jpg",
            "image/jpeg",
            b"\xff\xd8\xff\xe0 JPEG",
            False,
        ),
    )
    assert mail.text == "Foto terlampir."
    assert mail.defects == ()


# Gap 2: encoded words, RFC 2231, raw 8-bit next to an encoded word.


def test_encoded_words_split_character_and_raw_8bit_neighbour() -> None:
    mail = parse_fixture("encoded-words")

    assert mail.subject == "Caf\u00e9 Jalan berlubang \u00b1 2 m\u00b2 di Kebonagung"
    assert mail.sender_name == "Andr\u00e9 \U0001f64f Wijaya"
    assert mail.sender_address == "andre.wijaya@example.com"
    assert mail.defects == ()


def test_rfc2231_and_rfc2047_attachment_names() -> None:
    mail = parse_fixture("encoded-words")

    assert [(a.filename, a.content_type, a.payload) for a in mail.attachments] == [
        ("surat pengantar RT\u2013RW.pdf", "application/pdf", b"%PDF-1.4 a"),
        ("denah lokasi \u00b1 50m.png", "image/png", b"\x89PNG b"),
    ]


# Gap 5: header bytes that do not fit their charset label.


def test_ks_c_5601_is_read_as_cp949() -> None:
    mail = parse_fixture("ks-c-5601-subject")

    assert mail.subject == "Keluhan \ub620\ubc29\uac01\ud558 warga"
    assert mail.text == "Isi: \ub620\ubc29\uac01\ud558"
    assert mail.defects == ()


def test_undecodable_utf8_is_read_as_windows_1252() -> None:
    mail = parse_fixture("bad-utf8-subject")

    assert mail.subject == "Caf\u00e9 dekat balai desa rusak"
    assert mail.text == "Warung caf\u00e9 \u201cramai\u201d sampai malam."
    assert mail.defects == (
        "part 1: bytes do not fit utf-8; read as windows-1252",
        "subject: bytes do not fit utf-8; read as windows-1252",
    )


def test_unknown_charset_label_falls_back_to_utf8() -> None:
    mail = parse_fixture("unknown-charset")

    assert mail.subject == "Jalan \u00b1 rusak"
    assert mail.text == "Isi pengaduan."
    assert mail.defects == (
        "unknown charset 'x-porong-unknown' in part 1",
        "unknown charset 'x-porong-unknown' in subject",
    )


def _labelled(charset: str, body: bytes) -> ParsedMail:
    head = (
        "From: warga@example.com\nSubject: =?iso-8859-1?B?"
        + base64.b64encode("Jalan \u2014 rusak".encode()).decode()
        + "?=\nMessage-ID: <l@example.com>\n"
        "Date: Sat, 10 Jan 2026 14:00:00 +0700\n"
        f'Content-Type: text/plain; charset="{charset}"\n'
        "Content-Transfer-Encoding: 8bit\n\n"
    )
    return parse_message(head.encode() + body, now=NOW)


def test_utf8_labelled_latin1_is_read_as_utf8() -> None:
    mail = _labelled("iso-8859-1", "Lampu mati \u2014 caf\u00e9 gelap".encode())

    assert mail.subject == "Jalan \u2014 rusak"
    assert mail.text == "Lampu mati \u2014 caf\u00e9 gelap"
    assert mail.defects == (
        "part 1: labelled iso-8859-1 but is UTF-8; read as utf-8",
        "subject: labelled iso-8859-1 but is UTF-8; read as utf-8",
    )


def test_genuine_latin1_stays_latin1() -> None:
    mail = _labelled("windows-1252", "caf\u00e9 \u201cramai\u201d".encode("cp1252"))

    assert mail.text == "caf\u00e9 \u201cramai\u201d"


def test_raw_8bit_headers_in_utf8_and_latin1() -> None:
    mail = parse_fixture("raw-8bit-headers")

    assert mail.subject == "Keluhan warga Kedungboto \u00b1 20 KK tanpa air"
    assert mail.sender_name == "Jos\u00e9 Mar\u00eda"
    assert mail.sender_address == "jose@example.com"
    assert mail.defects == (
        "sender name: bytes do not fit utf-8; read as windows-1252",
    )


def test_direction_overrides_and_zero_width_spaces_leave_header_text() -> None:
    # Trial 28: a subject could show staff a reference it did not hold.
    notes: list[str] = []
    subject = "Re: [PRG-2026-0000\u200b02-8] \u202egnoraw\u202c Jalan \u200drusak"

    text = header_text(subject, "subject", notes)

    assert text == "Re: [PRG-2026-000002-8] gnoraw Jalan \u200drusak"
    assert notes == ["invisible direction or spacing marks removed from subject"]


@pytest.mark.parametrize(
    "hidden", ["\u00ad", "\u200e", "\u200f", "\u061c", "\u2062", "\u034f", "\U000e0041"]
)
def test_every_invisible_format_character_leaves_header_text(hidden: str) -> None:
    # Trial 32: a soft hyphen inside a reference showed staff ticket 1 on a new
    # ticket, and the reference was neither read nor cut from the subject.
    notes: list[str] = []

    text = header_text(f"[PRG-2026-0000{hidden}01-5] Jalan rusak", "subject", notes)

    assert text == "[PRG-2026-000001-5] Jalan rusak"
    assert notes == ["invisible direction or spacing marks removed from subject"]


def test_a_message_id_python_wrote_as_encoded_words_is_read() -> None:
    # Python's email package encodes an In-Reply-To too long for one line.
    raw = (
        b"From: a@example.com\r\nSubject: Re: x\r\nMessage-ID: <r@example.com>\r\n"
        b"In-Reply-To:\r\n"
        b" =?utf-8?q?=3C179641260160=2E16667=2E14804457247946738586=2Eunfi?=\r\n"
        b" =?utf-8?q?led-staff-mail=40sidoarjokab=2Ego=2Eid=3E?=\r\n\r\nisi\r\n"
    )

    mail = parse_message(raw, now=NOW)

    assert mail.in_reply_to == (
        "179641260160.16667.14804457247946738586.unfiled-staff-mail@sidoarjokab.go.id",
    )
