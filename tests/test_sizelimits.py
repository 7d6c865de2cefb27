"""Size limits: an oversized message keeps its text, its attachments are held back."""

from __future__ import annotations

import base64
import email
from email.policy import default
from pathlib import Path

import pytest
from intakekit import (
    FROM_CITIZEN,
    SIGNING_ENV,
    SIGNING_KEY,
    CollectingTransport,
    MovableClock,
    build_app,
)
from sqlalchemy import select

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.inbound import Outcome
from mailbot.models import Ticket
from mailbot.outbox import deliver_due

SMTP = SmtpConfig(host="localhost", port=25, security="none")
PHOTO = bytes(range(256)) * 12  # 3,072 bytes


def _with_photo(size: int) -> bytes:
    encoded = base64.encodebytes(PHOTO[:size]).decode()
    return (
        "From: Budi <budi@example.com>\nTo: porong@sidoarjokab.go.id\n"
        "Subject: Jalan rusak, foto terlampir\nMessage-ID: <foto-1@example.com>\n"
        "Date: Wed, 02 Dec 2026 08:00:00 +0700\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n'
        '--b\nContent-Type: text/plain; charset="utf-8"\n\n'
        "Jalan di depan rumah saya rusak parah.\n"
        '--b\nContent-Type: image/jpeg; name="jalan.jpg"\n'
        'Content-Disposition: attachment; filename="jalan.jpg"\n'
        f"Content-Transfer-Encoding: base64\n\n{encoded}--b--\n"
    ).encode()


def _sent_texts(app: App) -> dict[str, str]:
    """The plain text of each letter sent, by its first recipient."""
    transport = CollectingTransport()
    deliver_due(app.sessions, transport, SMTP, app.clock)
    texts = {}
    for _, to, raw in transport.sent:
        letter = email.message_from_bytes(raw, policy=default)
        plain = letter.get_body(("plain",))
        assert plain is not None
        texts[to[0]] = str(plain.get_content()).replace("\r\n", "\n")
    return texts


@pytest.mark.parametrize(
    ("limits", "size", "reason", "limit"),
    [
        (
            "max_message_bytes = 4000",
            3072,
            "pesan melebihi batas 4000 byte ({size} byte); lampiran tidak disimpan",
            "3,9 KB",
        ),
        (
            "max_attachment_bytes = 2000",
            3072,
            "melebihi batas 2000 byte (3072 byte); tidak disimpan",
            "2,0 KB",
        ),
    ],
)
def test_oversized_attachment_is_quarantined_and_the_unit_told(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    limits: str,
    size: int,
    reason: str,
    limit: str,
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    app = build_app(tmp_path, MovableClock(), f"[intake]\n{limits}\n")
    raw = _with_photo(size)
    reason = reason.format(size=len(raw))

    result = app.intake.receive(raw, FROM_CITIZEN)

    assert result.outcome == Outcome.TICKET
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        stored = ticket.messages[0].attachments
    assert [(a["filename"], a["quarantined"], a["reason"]) for a in stored] == [
        ("jalan.jpg", True, reason)
    ]
    assert not (app.settings.storage.data_dir / "attachments").exists()
    texts = _sent_texts(app)
    notice = texts["ekbang.porong@example.go.id"]
    assert f"- jalan.jpg (3,0 KB), dikarantina: {reason}" in notice
    told = texts["budi@example.com"]
    start = told.index("LAMPIRAN TIDAK TERSIMPAN")
    assert told[start : told.index("\nMohon", start)].splitlines() == [
        "LAMPIRAN TIDAK TERSIMPAN",
        f"Lampiran berikut melebihi batas ukuran {limit} sehingga",
        "tidak kami simpan:",
        "- jalan.jpg",
    ]


def test_attachment_within_limits_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    app = build_app(tmp_path, MovableClock(), "[intake]\nmax_message_bytes = 9000\n")

    app.intake.receive(_with_photo(3072), FROM_CITIZEN)

    with app.sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
        [stored] = ticket.messages[0].attachments
    path = app.settings.storage.data_dir / "attachments"
    assert (stored["quarantined"], stored["size"]) == (False, 3072)
    assert [p.read_bytes() for p in path.rglob("*") if p.is_file()] == [PHOTO]
