"""Tests of the parsing step: raw bytes to ParsedMail, mail-parser's gaps repaired."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        authentication_results_on_top=1,
        is_delivery_report=False,
        defects=(),
    )


@pytest.mark.parametrize("raw", [b"", b"   \r\n\r\n", b"\n"])
def test_empty_input_is_a_message_error(raw: bytes) -> None:
    with pytest.raises(MessageError, match="empty message"):
        parse_message(raw, now=NOW)


@pytest.mark.parametrize(
    "raw",
    [
        b"# mailbot\n\nThe helpdesk of the complaint service.\n",
        b"MIT License\r\n\r\nCopyright (c) 2026\r\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_bytes_without_header_fields_are_no_message(raw: bytes) -> None:
    with pytest.raises(MessageError) as raised:
        parse_message(raw, now=NOW)

    assert str(raised.value) == (
        "no header fields: not an email message, or its first line is broken"
    )


def test_attachment_is_reexported_from_parsing() -> None:
    attachment = Attachment("a.txt", "text/plain", b"a", False)

    assert attachment.filename == "a.txt"


def replace_header(scenario: str, name: bytes, line: bytes) -> bytes:
    """Return a fixture with one header line replaced (or removed when empty)."""
    raw = (DATA / f"parsing-{scenario}.eml").read_bytes()
    lines = raw.split(b"\r\n")
    index = next(i for i, text in enumerate(lines) if text.startswith(name + b":"))
    lines[index : index + 1] = [line] if line else []
    return b"\r\n".join(lines)


# Gap 4: a missing Date is not flagged by mail-parser; absurd dates.


def test_missing_date_is_a_defect() -> None:
    mail = parse_fixture("missing-date")

    assert mail.date is None
    assert mail.defects == ("missing Date",)


@pytest.mark.parametrize(
    ("line", "expected", "defects"),
    [
        (
            b"Date: Fri, 09 Jan 2026 23:59:00 -0500",
            datetime(2026, 1, 10, 4, 59, tzinfo=UTC),
            (),
        ),
        (
            b"Date: Thu, 01 Jan 1970 00:00:00 +0000",
            None,
            ("implausible Date 1970-01-01T00:00:00+00:00 ignored",),
        ),
        (
            b"Date: Tue, 13 Jan 2026 09:00:00 +0000",
            None,
            ("implausible Date 2026-01-13T09:00:00+00:00 ignored",),
        ),
        (b"Date: kemarin sore", None, ("unparseable Date",)),
    ],
)
def test_dates_are_checked_against_now(
    line: bytes, expected: datetime | None, defects: tuple[str, ...]
) -> None:
    raw = replace_header("plain-complaint", b"Date", line)

    mail = parse_message(raw, now=NOW)

    assert mail.date == expected
    assert mail.defects == defects


# Gap 10: delivery-status parts (calendar parts: test_mimeparts).


def test_delivery_status_report() -> None:
    mail = parse_fixture("bounce-dsn")

    assert mail.is_delivery_report is True
    assert mail.return_path == "<>"
    assert mail.auto_submitted == "auto-replied"
    assert mail.sender_address == "mailer-daemon@mx.example.net"
    assert mail.text == "Your message could not be delivered to budi@example.com."
    assert mail.attachments == (
        Attachment(
            "lampiran-1.txt",
            "message/delivery-status",
            b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
            b"Final-Recipient: rfc822; budi@example.com\r\n"
            b"Action: failed\r\nStatus: 5.1.1\r\n\r\n",
            False,
        ),
        Attachment(
            "lampiran-2.txt",
            "text/rfc822-headers",
            b"From: pengaduan@porong.example.go.id\r\n"
            b"Subject: [PRG-2026-000123-4] Pengaduan diterima",
            False,
        ),
    )
    assert mail.defects == ()


def test_plain_text_bounce_from_postmaster_is_a_delivery_report() -> None:
    mail = parse_fixture("undeliverable-plain-bounce")

    assert mail.is_delivery_report is True
    assert mail.return_path == "<>"


# Gap 11: NUL bytes, and a bare CR that would forge a header.


def test_nul_bytes_are_removed_and_noted() -> None:
    mail = parse_fixture("nul-bytes")

    assert mail.subject == "Lampu mati"
    assert mail.text == "Lampu jalan mati sejak Senin."
    assert mail.defects == (
        "NUL bytes removed from part 1",
        "control characters removed from subject",
    )


def test_bare_cr_does_not_forge_automatic_headers() -> None:
    mail = parse_fixture("bare-cr-header")

    assert mail.subject == "Tolong dibantu Auto-Submitted: auto-replied"
    assert mail.auto_submitted == ""
    assert mail.precedence == ""
    assert mail.text == "Saluran air mampet."
    assert mail.defects == ("bare CR inside the header section read as a space",)


def test_cr_only_line_ends_are_read_as_line_breaks() -> None:
    raw = (DATA / "parsing-missing-date.eml").read_bytes().replace(b"\r\n", b"\r")

    mail = parse_message(raw, now=NOW)

    assert mail.subject == "Tanpa tanggal"
    assert mail.text == "Isi pengaduan."
    assert mail.defects == ("CR-only line ends read as line breaks", "missing Date")


def test_automatic_reply_headers() -> None:
    mail = parse_fixture("auto-reply")

    assert mail.auto_submitted == "auto-replied"
    assert mail.precedence == "auto_reply"
    assert mail.list_id == "Warga RT 04 <rt04.example.org>"
    assert mail.x_autoreply is True
    assert mail.automatic_headers == ("X-Autoreply",)
    assert mail.in_reply_to == ("ack-123@porong.example.go.id",)
    assert mail.is_delivery_report is False


# Gap 12: long headers, nesting too deep to parse, broken boundaries.


def test_long_subject_is_cut() -> None:
    mail = parse_fixture("long-header")

    assert mail.subject == ("Jalan rusak " * 84).strip()[:998].rstrip()
    assert len(mail.text) == 50000
    assert mail.defects == ("subject of 5999 characters cut to 998",)


def test_nesting_too_deep_to_parse_keeps_the_whole_message() -> None:
    raw = (DATA / "parsing-too-deep-to-parse.eml").read_bytes()

    mail = parse_message(raw, now=NOW)

    assert mail.subject == "Terlalu dalam"
    assert mail.message_id == "deeper-1@example.com"
    assert mail.text == ""
    assert mail.attachments == (
        Attachment("lampiran-1.eml", "message/rfc822", raw, False),
    )
    assert mail.defects == (
        "MIME nesting too deep to parse; message kept as an attachment",
    )


def test_broken_nested_boundaries_are_read_as_text() -> None:
    # mail-parser 4.8 raised AttributeError on this message's missing epilogue;
    # mailbot walks the stdlib tree itself and reads what the parts hold.
    mail = parse_fixture("mailparser-failure")

    assert mail.sender_address == "warga@example.com"
    assert mail.date == datetime(2026, 1, 7, 1, 30, tzinfo=UTC)
    assert mail.text == "Isi pengaduan.\n--a"
    assert mail.defects == (
        "close boundary not found in part 1",
        "start boundary not found in part 2",
        "multipart without boundary in part 2; read as text",
    )


def test_broken_base64_in_an_address_name_is_read_with_the_stdlib() -> None:
    raw = replace_header(
        "plain-complaint", b"From", b"From: =?utf-8?B?QnVka===?= <budi@example.com>"
    ).replace(b"\r\nTo: ", b"\r\nTo: =?utf-8?B?QnVka===?= <porong@example.go.id>, ")

    mail = parse_message(raw, now=NOW)

    assert (mail.sender_name, mail.sender_address) == ("Bud", "budi@example.com")
    assert mail.to[0] == "porong@example.go.id"
    assert mail.defects[:2] == (
        "from: Base64 decoding error; read with the stdlib",
        "to: Base64 decoding error; read with the stdlib",
    )


def test_a_name_that_repeats_the_address_is_no_name() -> None:
    raw = replace_header(
        "plain-complaint", b"From", b"From: budi@example.com <budi@example.com>"
    )

    mail = parse_message(raw, now=NOW)

    assert (mail.sender_name, mail.sender_address) == ("", "budi@example.com")


def test_odd_message_id_and_ids_without_brackets() -> None:
    raw = replace_header(
        "plain-complaint", b"Message-ID", b"Message-ID: <[ABC====@host]>"
    ).replace(
        b"In-Reply-To: <ack-1@porong.example.go.id>",
        b"In-Reply-To: ack-1@porong.example.go.id (pesan Anda)",
    )

    mail = parse_message(raw, now=NOW)

    assert mail.message_id == "[ABC====@host]"
    assert mail.in_reply_to == ("ack-1@porong.example.go.id",)


@pytest.mark.parametrize(
    ("line", "defects"),
    [
        (b"", ("missing Message-ID",)),
        (b"Message-ID: <>", ("unusable Message-ID",)),
        (b"Message-ID: <" + b"a" * 400 + b"@x>", ("unusable Message-ID",)),
    ],
)
def test_missing_or_unusable_message_id(line: bytes, defects: tuple[str, ...]) -> None:
    raw = replace_header("plain-complaint", b"Message-ID", line)

    mail = parse_message(raw, now=NOW)

    assert mail.message_id is None
    assert mail.defects == defects


def test_lone_surrogates_from_a_codec_are_replaced() -> None:
    raw = replace_header(
        "plain-complaint", b"Subject", b"Subject: Lampu =?utf-7?q?+2D0-?= mati"
    )

    mail = parse_message(raw, now=NOW)

    assert mail.subject == "Lampu \ufffd mati"
    assert mail.subject.encode("utf-8") == b"Lampu \xef\xbf\xbd mati"


_FRAGMENTS = [
    b"\r",
    b"\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"=?utf-8?b?w6k=?=",
    b"=?ks_c_5601-1987?q?=8Cc?=",
    b"=?utf-7?q?+2D0-?=",
    b"=?x-bogus?q?a?=",
    b"Subject: ",
    b"From: ",
    b"Content-Type: multipart/mixed; boundary=z\n\n--z\n",
    b"Content-Type: message/rfc822\n\n",
    b"Content-Transfer-Encoding: base64\n\n",
    b"; filename*0=a; filename*=b",
    b"; name*=utf-8''%C5%93%FF",
    b"--z\n",
    b"--z--\n",
]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(st.sampled_from(_FRAGMENTS) | st.binary(max_size=24), max_size=40).map(
        b"".join
    )
)
def test_any_bytes_give_a_parsed_mail_or_a_message_error(tail: bytes) -> None:
    raw = (DATA / "parsing-missing-date.eml").read_bytes()[:60] + tail

    mail = parse_message(raw, now=NOW)

    texts = [mail.subject, mail.sender_name, mail.text, mail.html, *mail.defects]
    texts += [a.filename for a in mail.attachments] + list(mail.references)
    assert "".join(texts).encode("utf-8")
    assert all(a.filename for a in mail.attachments)
    assert "\n" not in mail.subject


def test_every_corpus_file_parses_or_is_refused_with_its_reason() -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    parsed, refused = [], {}
    for path in files:
        try:
            parsed.append(parse_message(path.read_bytes(), now=NOW))
        except MessageError as exc:
            refused[str(path.relative_to(CORPUS))] = str(exc)

    # Two licences, the README, a digest's body part without headers, and a
    # message whose first line "Fro :uMmlti ..." makes the stdlib read no header.
    assert refused == dict.fromkeys(
        [
            "README.md",
            "cpython/LICENSE-PSF.txt",
            "cpython/msg_19.eml",
            "stalwart/LICENSE-MIT.txt",
            "stalwart/malformed-019.eml",
        ],
        "no header fields: not an email message, or its first line is broken",
    )
    assert len(parsed) == 153
    assert sum(mail.message_id is not None for mail in parsed) == 79
    assert sum(bool(mail.defects) for mail in parsed) == 88
