"""Signed Message-IDs: made, read back, tamper-proof, key kept once."""

import stat
from pathlib import Path

from mailbot.config import parse_settings
from mailbot.references import Reference
from mailbot.signing import Signer, load_signer

KEY = b"k" * 32


def test_a_signed_id_names_its_ticket_and_recipient() -> None:
    signer = Signer(KEY, "mail.sidoarjokab.go.id")
    message_id = signer.make_id(Reference("PRG", 2026, 7), "Budi@Example.com", "ack")

    signed = signer.read_id(f"<{message_id}>")

    assert message_id.startswith("prg2026000007.r")
    assert message_id.endswith("@mail.sidoarjokab.go.id")
    assert signed is not None
    assert str(signed.reference) == "PRG-2026-000007-7"
    assert signed.kind == "ack"
    assert signed.addressed_to(signer, "budi@example.com") is True
    assert signed.addressed_to(signer, "someone@example.com") is False
    assert "budi" not in message_id.lower()


def test_a_changed_or_foreign_id_is_not_ours() -> None:
    signer = Signer(KEY, "sidoarjokab.go.id")
    message_id = signer.make_id(Reference("PRG", 2026, 7), "a@example.com", "ack")
    other_key = Signer(b"o" * 32, "sidoarjokab.go.id")

    forged = message_id.replace("prg2026000007", "prg2026000008", 1)

    assert signer.read_id(forged) is None
    assert other_key.read_id(message_id) is None
    assert signer.read_id("CAF=abc123@mail.gmail.com") is None


def test_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = parse_settings(f'[storage]\ndata_dir = "{tmp_path}"\n', "test")

    first = load_signer(settings)
    second = load_signer(settings)
    message_id = first.make_id(Reference("PRG", 2026, 1), "a@example.com", "ack")

    key_file = tmp_path / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.read_id(message_id) is not None
    assert "key=<hidden>" in repr(first)
