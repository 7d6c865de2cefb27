"""Size limits: a message over ``[intake] max_message_bytes`` keeps its text.

Its attachments are quarantined, not written: the raw message stays in the
archive, and the unit's notification lists each attachment with the reason.
Single attachments over ``max_attachment_bytes`` are handled by the attachment
step itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

from mailbot.attachments import Attachment, StoredAttachment, store_attachments
from mailbot.config import IntakeConfig

log = logging.getLogger(__name__)


def store_within_limits(
    attachments: Sequence[Attachment],
    message_size: int,
    data_dir: Path,
    limits: IntakeConfig,
) -> list[StoredAttachment]:
    """Store the attachments of a message, or quarantine what is over a limit."""
    if message_size > limits.max_message_bytes:
        return quarantine_all(attachments, message_size, limits.max_message_bytes)
    return store_attachments(
        attachments, data_dir, max_bytes=limits.max_attachment_bytes
    )


def quarantine_all(
    attachments: Sequence[Attachment], message_size: int, limit: int
) -> list[StoredAttachment]:
    """Every attachment of an oversized message, quarantined with the reason."""
    reason = (
        f"pesan melebihi batas {limit} byte ({message_size} byte); "
        "lampiran tidak disimpan"
    )
    log.warning(
        "message of %d bytes over the limit of %d: %d attachments quarantined",
        message_size,
        limit,
        len(attachments),
    )
    return [
        StoredAttachment(
            a.filename,
            a.content_type,
            len(a.payload),
            hashlib.sha256(a.payload).hexdigest(),
            None,
            True,
            reason,
        )
        for a in attachments
    ]
