"""Our outgoing Message-IDs, signed so that a reply finds its ticket with certainty.

A Message-ID we write looks like
``<prg2026000123.r3f9a1c2d.k5b2e.n7d1c9e0a.s0c4f1e2b3a4d5c6e@sidoarjokab.go.id>``:
the ticket's reference, a digest of the recipient's address (never the address,
since Message-IDs travel in the clear), the kind of letter, a nonce, and an HMAC
over all of it. A reply naming such an id in In-Reply-To or References is matched
to its ticket and to the person it was sent to, even when the subject was lost.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from mailbot.config import Settings, read_secret
from mailbot.errors import ConfigError
from mailbot.references import Reference

log = logging.getLogger(__name__)

_KEY_FILE = "signing.key"
# Shorter keys could be guessed from the signed ids people forward to us.
MIN_KEY_BYTES = 16
_ID = re.compile(
    r"^(?P<prefix>[a-z]{2,6})(?P<year>\d{4})(?P<seq>\d{6})"
    r"\.r(?P<recipient>[0-9a-f]{10})\.k(?P<kind>[a-z_]{1,24})\.n(?P<nonce>[0-9a-f]{8})"
    r"\.s(?P<sig>[0-9a-f]{20})@(?P<domain>[^@>\s]+)$"
)


@dataclass(frozen=True)
class SignedId:
    """What a verified Message-ID of ours tells."""

    reference: Reference
    recipient_digest: str
    kind: str

    def addressed_to(self, signer: Signer, address: str) -> bool:
        """Whether the letter with this id was sent to this address."""
        return hmac.compare_digest(
            self.recipient_digest, signer.recipient_digest(address)
        )


class Signer:
    """Makes and verifies our Message-IDs with a secret key."""

    def __init__(self, key: bytes, domain: str) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"office.signing_key_env: the key needs {MIN_KEY_BYTES} bytes or more"
            )
        self._key = key
        self.domain = domain

    def __repr__(self) -> str:
        return f"Signer(domain={self.domain!r}, key=<hidden>)"

    def recipient_digest(self, address: str) -> str:
        data = b"recipient:" + address.strip().lower().encode("utf-8")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:10]

    def _signature(self, body: str) -> str:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).hexdigest()[
            :20
        ]

    def make_id(self, reference: Reference, recipient: str, kind: str) -> str:
        """A new Message-ID, without angle brackets."""
        body = (
            f"{reference.prefix.lower()}{reference.year:04d}{reference.seq:06d}"
            f".r{self.recipient_digest(recipient)}.k{kind}.n{secrets.token_hex(4)}"
        )
        return f"{body}.s{self._signature(body)}@{self.domain}"

    def read_id(self, message_id: str) -> SignedId | None:
        """The ticket and recipient behind one of our ids; None if not ours."""
        candidate = message_id.strip().strip("<>")
        match = _ID.match(candidate)
        if match is None:
            return None

        body = candidate[: match.start("sig") - 2]
        if not hmac.compare_digest(self._signature(body), match["sig"]):
            log.warning("a Message-ID of our form carries a bad signature")
            return None
        reference = Reference(
            match["prefix"].upper(), int(match["year"]), int(match["seq"])
        )
        return SignedId(reference, match["recipient"], match["kind"])


def load_signer(settings: Settings) -> Signer:
    """The signer, its key from the environment or from a file made once."""
    domain = settings.office.email.rpartition("@")[2] or "localhost"
    if settings.office.signing_key_env:
        secret = read_secret(settings.office.signing_key_env, "office.signing_key_env")
        return Signer(secret.get_secret_value().encode("utf-8"), domain)
    return Signer(_key_from_file(settings.storage.data_dir / _KEY_FILE), domain)


def _key_from_file(path: Path) -> bytes:
    if path.exists():
        return bytes.fromhex(path.read_text("ascii").strip())

    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL: two processes starting together must not write two keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text("ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    log.info("generated a new Message-ID signing key in %s", path)
    return key
