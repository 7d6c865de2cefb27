"""Tests of the MIME walk, through parse_message: body text, attachments, depth cap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mailbot.parsing import Attachment, ParsedMail, parse_message

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def parse_fixture(scenario: str) -> ParsedMail:
    return parse_message((DATA / f"parsing-{scenario}.eml").read_bytes(), now=NOW)


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


# Gap 6: a forwarded message stays one attachment.


def test_forwarded_message_is_one_eml_attachment() -> None:
    mail = parse_fixture("forwarded-message")

    assert mail.text == "Mohon ditindaklanjuti, berikut keluhan warga."
    assert [(a.filename, a.content_type, a.inline) for a in mail.attachments] == [
        ("lampiran-1.eml", "message/rfc822", False)
    ]
    forwarded = parse_message(mail.attachments[0].payload, now=NOW)
    assert forwarded.subject == "Banjir di RT 04"
    assert forwarded.message_id == "inner-1@example.net"
    assert forwarded.text == "Air masuk rumah setinggi 40 cm."
    assert [a.filename for a in forwarded.attachments] == ["banjir.jpg"]


# Gap 7: an unnamed inline image.


def test_unnamed_inline_image_is_an_attachment_not_text() -> None:
    mail = parse_fixture("unnamed-inline-image")

    assert mail.text == "Ini fotonya."
    assert mail.attachments == (
        Attachment(
            "lampiran-1.jpg", "image/jpeg", b"\xff\xd8\xff\xe0garbage-photo", True
        ),
    )


# Gap 8: names that reduce to nothing.


def test_attachments_with_unusable_names_get_generated_names() -> None:
    mail = parse_fixture("unusable-attachment-names")

    assert [(a.filename, a.payload) for a in mail.attachments] == [
        ("lampiran-1.pdf", b"%PDF-1.4 dots"),
        ("lampiran-2.bin", b"\x00\x01binary"),
        ("lampiran-3.png", b"\x89PNG nul"),
    ]
    assert mail.defects == (
        "attachment name '..' unusable; named lampiran-1.pdf",
        "attachment name '../../' unusable; named lampiran-2.bin",
        "control characters removed from attachment name",
    )


# Gap 9: broken base64.


def test_broken_base64_is_decoded_as_far_as_possible() -> None:
    mail = parse_fixture("broken-base64")

    assert mail.text == "Mohon diprose"
    assert mail.attachments == (
        Attachment(
            "domisili.txt",
            "text/plain",
            b"Surat keterangan domisili RT 03 RW 02.",
            False,
        ),
    )
    assert mail.defects == (
        "broken base64 in part 2; readable bytes kept",
        "broken base64 in part 3; readable bytes kept",
    )


# Gap 10: calendar and delivery-status parts are attachments, not body text
# (the delivery report itself: test_parsing).


def test_calendar_invitation_is_an_attachment() -> None:
    mail = parse_fixture("calendar-invite")

    assert mail.text == "Rapat warga Sabtu pukul 19.00 di balai RT."
    assert mail.html == "<p>Rapat warga <b>Sabtu</b> pukul 19.00 di balai RT.</p>"
    assert mail.attachments == (
        Attachment(
            "lampiran-1.ics",
            "text/calendar",
            b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
            b"SUMMARY:Rapat warga RT 04\r\nEND:VEVENT\r\nEND:VCALENDAR",
            False,
        ),
    )


# Gap 12: TNEF, S/MIME, nesting deeper than the cap.


def test_tnef_winmail_dat_is_kept_as_an_attachment() -> None:
    mail = parse_fixture("tnef-winmail")

    assert mail.text == "Laporan terlampir."
    assert mail.attachments == (
        Attachment("winmail.dat", "application/ms-tnef", b'x\x9f>"tnef-body', False),
    )


def test_smime_signed_mail_text_and_signature() -> None:
    mail = parse_fixture("smime-signed")

    assert mail.text == "Pengaduan resmi dari Ketua RT 04."
    assert mail.attachments == (
        Attachment(
            "smime.p7s", "application/pkcs7-signature", b"0\x82\x05signature", False
        ),
    )
    assert mail.defects == ()


def test_smime_encrypted_mail_is_kept_and_flagged() -> None:
    mail = parse_fixture("smime-encrypted")

    assert mail.text == ""
    assert mail.attachments == (
        Attachment(
            "smime.p7m", "application/pkcs7-mime", b"0\x80\x06\tenveloped", False
        ),
    )
    assert mail.defects == ("S/MIME encrypted or opaque part 1 not readable",)


def test_nesting_deeper_than_the_cap_is_kept_whole() -> None:
    mail = parse_fixture("deep-nesting")

    assert mail.text == ""
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("lampiran-1.eml", "message/rfc822")
    ]
    assert mail.attachments[0].payload.startswith(
        b'Content-Type: multipart/mixed; boundary="n4"\r\n\r\n--n4\r\n'
    )
    assert mail.defects == ("MIME nesting deeper than 20 levels; part 21 kept whole",)
