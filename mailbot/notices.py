"""Notices: office mail that belongs to no ticket (digest, mailbox alerts).

Queues composed letters in the outbox inside the caller's transaction, one row
per recipient. A notice given a ``key`` gets a Message-ID made from it, so a
rerun that queues the same notice again finds it already queued and adds nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import datetime
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.compose import Letter
from mailbot.models import OutboxItem
from mailbot.outbox import Sender, queue_letter

log = logging.getLogger(__name__)


def queue_notice(
    session: Session,
    letter: Letter,
    *,
    sender: Sender,
    now: datetime,
    key: str | None = None,
) -> list[OutboxItem]:
    """Queue one copy of the letter per recipient; returns the rows added."""
    domain = sender.address.rpartition("@")[2] or "localhost"
    items = []
    for address in letter.to:
        message_id = _message_id(key, address, letter.kind, domain)
        if key is not None and _queued(session, message_id):
            continue
        single = replace(letter, to=(address,))
        items.append(_queue_one(session, single, message_id, sender, now))
    if items:
        log.info("notice %s: %d queued", letter.kind, len(items))
    return items


def _message_id(key: str | None, address: str, kind: str, domain: str) -> str:
    if key is None:
        return make_msgid(idstring=kind.replace("_", "-"), domain=domain).strip("<>")
    digest = hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()
    return f"{key}.r{digest[:10]}@{domain}"


def _queued(session: Session, message_id: str) -> bool:
    found = session.scalar(
        select(OutboxItem.id).where(OutboxItem.message_id == message_id)
    )
    return found is not None


def _queue_one(
    session: Session, letter: Letter, message_id: str, sender: Sender, now: datetime
) -> OutboxItem:
    item = queue_letter(session, letter, message_id=message_id, sender=sender, now=now)
    session.flush()
    return item
