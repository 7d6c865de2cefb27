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

from mailbot.attachments import Attachment, StoredAttachment

log = logging.getLogger(__name__)


def over_message_limit(size: int, limit: int) -> bool:
    """Whether a message of this many bytes is over the limit."""
    return size > limit


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
