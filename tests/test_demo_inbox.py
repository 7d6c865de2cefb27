"""Tests for the bundled demo inbox: examples/inbox is a Maildir of 16 complaints."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

INBOX = Path(__file__).resolve().parents[1] / "examples" / "inbox"
OFFICE_INBOXES = {"porong@sidoarjokab.go.id", "kecamatanporong@gmail.com"}
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NIK = re.compile(r"\b\d{16}\b")

Demo = list[tuple[Path, EmailMessage]]


@pytest.fixture(scope="module")
def demo() -> Demo:
    parser = BytesParser(policy=policy.default)
    messages = []
    for path in sorted((INBOX / "new").iterdir()):
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        messages.append((path, message))
    return messages


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content


def addresses(message: EmailMessage, header: str) -> list[str]:
    return [address for _, address in getaddresses(message.get_all(header, []))]


def test_the_maildir_has_its_three_folders() -> None:
    assert sorted(p.name for p in (INBOX / "cur").iterdir()) == [".gitkeep"]
    assert sorted(p.name for p in (INBOX / "tmp").iterdir()) == [".gitkeep"]
    assert (INBOX / "new").is_dir()


def test_every_message_parses_with_the_basic_headers(demo: Demo) -> None:
    ids = [str(message["Message-ID"]) for _, message in demo]

    assert len(demo) == 16
    assert len(set(ids)) == 16
    for path, message in demo:
        assert message["From"], path.name
        assert message["Date"], path.name
        assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(message["Message-ID"]))
        assert [d for part in message.walk() for d in part.defects] == [], path.name


def test_names_sort_by_date_and_carry_its_epoch(demo: Demo) -> None:
    epochs = []
    for path, message in demo:
        moment = parsedate_to_datetime(str(message["Date"]))
        assert re.fullmatch(r"\d{10}\.\d{2}\.demo", path.name)
        assert int(path.name.split(".")[0]) == int(moment.timestamp())
        epochs.append(moment.timestamp())

    assert epochs == sorted(epochs)
    assert [path.name.split(".")[1] for path, _ in demo] == [
        f"{n:02d}" for n in range(1, 17)
    ]


def test_dates_are_november_2026_in_wib_with_the_right_day(demo: Demo) -> None:
    for path, message in demo:
        raw_date = str(message["Date"])
        moment = parsedate_to_datetime(raw_date)

        assert (moment.year, moment.month) == (2026, 11), path.name
        assert raw_date.endswith(" +0700"), path.name
        assert raw_date[:3] == DAY_NAMES[moment.weekday()], path.name


def test_citizens_write_from_example_domains_to_the_office(demo: Demo) -> None:
    both = []
    for path, message in demo:
        sender = addresses(message, "From")
        recipients = set(addresses(message, "To"))

        assert len(sender) == 1
        assert sender[0].endswith(EXAMPLE_DOMAINS), path.name
        assert str(message["Message-ID"]).rstrip(">").endswith(EXAMPLE_DOMAINS)
        assert recipients <= OFFICE_INBOXES, path.name
        if recipients == OFFICE_INBOXES:
            both.append(path.name)

    assert both == ["1793893629.04.demo"]


def test_exactly_one_html_only_and_one_alternative(demo: Demo) -> None:
    kinds = [message.get_content_type() for _, message in demo]

    assert kinds.count("text/html") == 1
    assert kinds.count("multipart/alternative") == 1
    assert kinds.count("multipart/mixed") == 1
    assert kinds.count("text/plain") == 13


def test_exactly_one_auto_reply(demo: Demo) -> None:
    auto = [m for _, m in demo if m.get("Auto-Submitted", "no") != "no"]

    assert len(auto) == 1
    assert auto[0]["Auto-Submitted"] == "auto-replied"
    assert str(auto[0]["Subject"]).startswith("Balasan Otomatis: ")


def test_exactly_one_follow_up_quoting_an_earlier_complaint(demo: Demo) -> None:
    by_id = {str(m["Message-ID"]): m for _, m in demo}
    follow_ups = [m for _, m in demo if str(m.get("In-Reply-To", "")) in by_id]

    assert len(follow_ups) == 1
    reply = follow_ups[0]
    original = by_id[str(reply["In-Reply-To"])]
    assert str(reply["References"]) == str(original["Message-ID"])
    assert str(reply["Subject"]) == f"Re: {original['Subject']}"
    assert (
        "Pada Sen, 16 Nov 2026 pukul 09.12 Budi Santoso "
        "<budi.santoso@example.com> menulis:"
    ) in body_text(reply).splitlines()
    assert str(original["Date"]) == "Mon, 16 Nov 2026 09:12:47 +0700"
    assert addresses(original, "From") == ["budi.santoso@example.com"]


def test_exactly_one_real_jpeg_attachment(demo: Demo) -> None:
    images = [
        part
        for _, message in demo
        for part in message.iter_attachments()
        if part.get_content_maintype() == "image"
    ]

    assert len(images) == 1
    assert images[0].get_filename() == "sampah-pasar-porong.jpg"
    data = images[0].get_content()
    assert isinstance(data, bytes)
    assert data[:2] == b"\xff\xd8"
    assert data[-2:] == b"\xff\xd9"
    frame = data.index(b"\xff\xc0")
    height = int.from_bytes(data[frame + 5 : frame + 7], "big")
    width = int.from_bytes(data[frame + 7 : frame + 9], "big")
    assert (height, width, data[frame + 9]) == (8, 8, 3)


def test_exactly_one_encoded_subject(demo: Demo) -> None:
    encoded = [m for path, m in demo if b"Subject: =?UTF-8?" in path.read_bytes()]

    assert len(encoded) == 1
    assert str(encoded[0]["Subject"]) == (
        "Akta kelahiran anak saya belum terbit \u2013 mohon bantuan"
    )


def test_niks_are_obviously_fake_sidoarjo_numbers(demo: Demo) -> None:
    with_nik = []
    for path, message in demo:
        niks = NIK.findall(body_text(message))
        # Porong's district code, one birth date (12 May 1988) for everyone
        # so that they count as NIKs, and serials nobody is given.
        assert all(re.fullmatch(r"3515161205880\d{3}", nik) for nik in niks), niks
        if niks:
            with_nik.append(path.name.split(".")[1])

    # The follow-up (14) quotes Budi's complaint (12), NIK included.
    assert with_nik == ["01", "02", "05", "06", "08", "11", "12", "14"]
