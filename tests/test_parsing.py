"""Tests of the parsing step: raw bytes to ParsedMail, mail-parser's gaps repaired."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbot.errors import MessageError
from mailbot.parsing import Attachment, ParsedMail, parse_message

DATA = Path(__file__).resolve().parent / "data"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NOW = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def parse_fixture(scenario: str) -> ParsedMail:
    return parse_message((DATA / f"parsing-{scenario}.eml").read_bytes(), now=NOW)


def test_plain_complaint_fields() -> None:
    mail = parse_fixture("plain-complaint")

    assert mail == ParsedMail(
        message_id="CAK1234.abcd@mail.example.com",
        in_reply_to=("ack-1@porong.example.go.id",),
        references=("root-0@mail.example.com", "ack-1@porong.example.go.id"),
        subject="Lampu PJU mati di Jl. Melati",
        sender_name="Budi Santoso",
        sender_address="budi.santoso@example.com",
        reply_to="budi.kantor@example.net",
        to=("pengaduan@porong.example.go.id",),
        cc=("siti@example.org", "rina@example.org"),
        date=datetime(2026, 1, 5, 2, 15, tzinfo=UTC),
        text=(
            "Selamat pagi Bapak/Ibu,\n\n"
            "Lampu PJU di depan masjid Al-Ikhlas sudah mati 3 hari.\n\n"
            "Terima kasih."
        ),
        html="",
        attachments=(),
        auto_submitted="",
        precedence="",
        list_id="",
        x_autoreply=False,
        automatic_headers=(),
        return_path="budi.santoso@example.com",
        authentication_results=(
            "mx.porong.example.go.id; spf=pass smtp.mailfrom=example.com",
        ),
        is_delivery_report=False,
        defects=(),
    )


def test_html_only_mail_gets_readable_text_and_safe_html() -> None:
    mail = parse_fixture("html-only")

    assert mail.text == (
        "Sampah di Jl. Mawar menumpuk.\n\n"
        "  * sudah 2 minggu\n  * bau menyengat\n\n"
        "Mohon segera diangkut \u2013 terima kasih."
    )
    assert mail.html == (
        "<p>Sampah di <b>Jl. Mawar</b> menumpuk.</p>\n"
        "<ul><li>sudah 2 minggu</li><li>bau menyengat</li></ul>\n"
        "<img>\n"
        "<p>Mohon segera diangkut \u2013 terima kasih.</p>"
    )
    assert mail.defects == ()


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"\n"])
def test_empty_input_is_a_message_error(raw: bytes) -> None:
    with pytest.raises(MessageError, match="empty message"):
        parse_message(raw, now=NOW)


def test_attachment_is_reexported_from_parsing() -> None:
    attachment = Attachment("a.txt", "text/plain", b"a", False)

    assert attachment.filename == "a.txt"


def test_every_corpus_file_parses_without_an_exception() -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())

    parsed = [parse_message(p.read_bytes(), now=NOW) for p in files]

    assert len(parsed) == 158
    assert sum(mail.message_id is not None for mail in parsed) == 79
    assert sum(bool(mail.defects) for mail in parsed) == 93
