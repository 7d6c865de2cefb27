"""Letters: which mail a ticket event sends, to whom, with which fields.

Reads tickets and the received mail, renders the templates and queues the
result in the outbox, all inside the caller's transaction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailbot.attachments import StoredAttachment
from mailbot.compose import Letter
from mailbot.config import Settings
from mailbot.headertext import JOINERS
from mailbot.identity import PHONE_NUMBER, is_phone
from mailbot.models import OutboxItem, Ticket
from mailbot.outbox import Sender, queue
from mailbot.parsing import ParsedMail
from mailbot.references import parse_reference
from mailbot.rendering import Renderer
from mailbot.signing import Signer


@dataclass(frozen=True)
class Received:
    """A received message as the letters about it need it."""

    mail: ParsedMail
    message_id: str
    attachments: tuple[StoredAttachment, ...]
    text: str
    # When it reached the office's server (or mailbot): the sender's Date
    # header is the sender's clock, often wrong, and says nothing of arrival.
    at: datetime


@dataclass(frozen=True)
class Related:
    """Another ticket a new one is linked to, and why (for staff and history)."""

    reference: str
    why: str
    detail: str

    @classmethod
    def continued(cls, reference: str) -> Related:
        return cls(
            reference,
            "pengadu menulis lagi setelah tiket tersebut selesai",
            f"continues {reference}",
        )

    @classmethod
    def answered_elsewhere(cls, reference: str) -> Related:
        return cls(
            reference,
            "membalas email tiket tersebut, tetapi dari alamat lain",
            f"answers a letter of {reference} from another address",
        )

    @classmethod
    def in_conversation(cls, reference: str) -> Related:
        return cls(
            reference,
            "membalas percakapan pengaduan tersebut, tetapi dari alamat lain",
            f"replies in the conversation of {reference} from another address",
        )

    @classmethod
    def mentioned(cls, reference: str) -> Related:
        return cls(reference, "disebut dalam pesan", f"mentions {reference}")


class Correspondence:
    """Writes the letters of tickets: acknowledgements and unit notices."""

    def __init__(self, settings: Settings, signer: Signer, renderer: Renderer) -> None:
        self.settings = settings
        self.signer = signer
        self.renderer = renderer
        self.sender = Sender.of_office(settings)

    def _office(self) -> dict[str, str]:
        office = self.settings.office
        return {
            "name": office.name,
            "address": office.address,
            "phone": office.phone,
            "email": office.email,
            "website": office.website,
        }

    def ticket_fields(self, ticket: Ticket) -> dict[str, Any]:
        """The fields every letter about a ticket can use."""
        return {
            "office": self._office(),
            "reference": ticket.reference,
            "complainant_name": greeting_name(ticket.complainant_name),
            "subject": ticket.subject,
            "received_at": ticket.received_at,
            "due_at": ticket.due_at,
            "unit_name": self.settings.unit(ticket.unit_code).name,
            "unit_code": ticket.unit_code,
            "identity_missing": not ticket.identity_provided,
        }

    def staff_letter(
        self,
        ticket: Ticket,
        kind: str,
        title: str,
        template: str,
        fields: dict[str, Any],
    ) -> Letter:
        """A letter to staff about a ticket; their replies come back to its inbox."""
        return Letter(
            kind=kind,
            to=(),
            subject=f"[{ticket.reference}] {title}: {ticket.subject}",
            body=self.renderer.render(template, fields),
            reply_to=ticket.inbox_address,
        )

    def send(
        self, session: Session, ticket: Ticket, letter: Letter, now: datetime
    ) -> OutboxItem:
        """Queue one letter of a ticket, with a Message-ID signed for its recipient."""
        reference = parse_reference(
            ticket.reference, self.settings.office.reference_prefix
        )
        return queue(
            session,
            ticket,
            letter,
            reference=reference,
            signer=self.signer,
            sender=self.sender,
            now=now,
        )

    def acknowledge(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> OutboxItem:
        """Tell the complainant the complaint is recorded, with its reference."""
        fields = self.ticket_fields(ticket)
        fields["response_hours"] = self.settings.office.response_hours
        # Counted in office hours the promise is not "1x24 jam": say what it is.
        fields["working_hours"] = self.settings.sla.mode == "working_hours"
        fields["inbox_address"] = ticket.inbox_address
        fields["attachments_not_kept"] = [
            a.filename for a in received.attachments if a.quarantined
        ]
        limits = self.settings.intake
        fields["attachment_limit"] = min(
            limits.max_attachment_bytes, limits.max_message_bytes
        )
        return self._answer(
            session,
            ticket,
            received,
            now,
            kind="acknowledgement",
            title="Pengaduan diterima",
            fields=fields,
        )

    def confirm_identity(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> OutboxItem:
        """Tell the complainant the identity the acknowledgement asked for arrived."""
        fields = {**self.ticket_fields(ticket), "inbox_address": ticket.inbox_address}
        return self._answer(
            session,
            ticket,
            received,
            now,
            kind="identity_received",
            title="Identitas diterima",
            fields=fields,
        )

    def confirm_reopened(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> OutboxItem:
        """Tell the complainant their reply reopened the ticket, and its due time."""
        fields = {**self.ticket_fields(ticket), "inbox_address": ticket.inbox_address}
        return self._answer(
            session,
            ticket,
            received,
            now,
            kind="reopened",
            title="Pengaduan dibuka kembali",
            fields=fields,
        )

    def _answer(
        self,
        session: Session,
        ticket: Ticket,
        received: Received,
        now: datetime,
        *,
        kind: str,
        title: str,
        fields: dict[str, Any],
    ) -> OutboxItem:
        # An automatic answer to the complainant's own message, threaded under it.
        subject = citizen_subject(ticket.subject)
        letter = Letter(
            kind=kind,
            to=(ticket.complainant_email,),
            subject=f"[{ticket.reference}] {title}: {subject}",
            body=self.renderer.render(
                f"citizen/{kind}", {**fields, "subject": subject}
            ),
            reply_to=ticket.inbox_address,
            in_reply_to=received.message_id,
            references=(*received.mail.references, received.message_id),
            auto_submitted="auto-replied",
        )
        return self.send(session, ticket, letter, now)

    def notify_unit(
        self,
        session: Session,
        ticket: Ticket,
        received: Received,
        now: datetime,
        related: Sequence[Related] = (),
    ) -> list[OutboxItem]:
        """Tell each staff address of the ticket's unit about a new complaint."""
        fields = self.ticket_fields(ticket)
        fields.update(
            complainant_email=ticket.complainant_email,
            text=notice_text(received.text),
            attachments=_attachment_fields(received.attachments),
            matched_keywords=list(ticket.matched_keywords),
            related=[{"reference": r.reference, "why": r.why} for r in related],
        )
        letter = self.staff_letter(
            ticket,
            "unit_notification",
            "Pengaduan baru",
            "staff/new_ticket",
            fields,
        )
        return self.send_to_unit(session, ticket, letter, now)

    def notify_follow_up(
        self, session: Session, ticket: Ticket, received: Received, now: datetime
    ) -> list[OutboxItem]:
        """Tell the ticket's unit that the complainant wrote again."""
        fields = self.ticket_fields(ticket)
        fields.update(
            text=notice_text(received.text),
            attachments=_attachment_fields(received.attachments),
            status=str(ticket.status),
            received_at=received.at,
        )
        letter = self.staff_letter(
            ticket,
            "follow_up_notification",
            "Tambahan dari pelapor",
            "staff/follow_up",
            fields,
        )
        return self.send_to_unit(session, ticket, letter, now)

    def send_to_unit(
        self, session: Session, ticket: Ticket, letter: Letter, now: datetime
    ) -> list[OutboxItem]:
        """Queue a letter to the unit's mailboxes and to each of its staff."""
        # One letter per address: each carries a Message-ID signed for its own
        # recipient, which later tells whose reply it is.
        addresses = self.settings.unit_recipients(ticket.unit_code)
        return [
            self.send(session, ticket, replace(letter, to=(address,)), now)
            for address in addresses
        ]


def _attachment_fields(attachments: Sequence[StoredAttachment]) -> list[dict[str, Any]]:
    return [
        {
            "filename": a.filename,
            "size": a.size,
            "quarantined": a.quarantined,
            "reason": a.reason,
        }
        for a in attachments
    ]


# A complaint's text is quoted to staff in full up to this many characters; a
# pasted document beyond it would make the notice too large to deliver.
NOTICE_TEXT_LIMIT = 20_000


def notice_text(text: str) -> str:
    """The citizen's text as a staff notice quotes it."""
    if len(text) <= NOTICE_TEXT_LIMIT:
        return text
    return (
        text[:NOTICE_TEXT_LIMIT]
        + "\n\n[... teks dipotong; isi lengkap tersimpan pada tiket ...]"
    )


# Honorifics people put in their own display name; the templates greet with
# "Bapak/Ibu" already, and "Bapak/Ibu Pak Budi" reads as a mistake.
# Letters, with the marks, spaces and punctuation of names; no digits or links.
_NAME = re.compile(r"[^\W\d_]+(?:[ .,'\u2019()-]+[^\W\d_]*)*")
# Top-level domains of the links people write without a scheme ("s.id/abc",
# "bit.ly", "klaim-hadiah.xyz"), which mail clients turn into links themselves.
# A list, in lower case as links are written, not any letters after a dot:
# "Jl.Raya", "bulan.Info" (a missing space) and "Sdr.In" are not links.
_TLDS = (
    "com|net|org|info|biz|id|ly|me|io|co|cc|tk|ml|cf|gq|to|gl|gd|app|dev|ws|tv|"
    "us|uk|ru|cn|in|my|sg|xyz|top|site|online|club|shop|link|click|live|vip|icu|"
    "buzz|fun|store|website|space|tech|pro|asia|mobi|news|win|bid|loan|work|ai|"
    "cfd|sbs|cyou|rest|life|today|best|support|help|email|fyi|cloud|digital|"
    "world|center|lol|monster|quest|bond|pw|su|ink|xin|cam|gdn|men|date|party|"
    "gy|at|ee|zip|mov"
)
_LINK = re.compile(
    r"(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)\S*"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    rf"|\b(?:[a-z0-9-]+\.)+(?-i:{_TLDS})\b(?:/\S*)?"
    # An address by number only with a path or port: "1.250.000.000" is money.
    r"|\b(?:\d{1,3}\.){3}\d{1,3}[/:]\S*",
    re.IGNORECASE,
)
MAX_NAME_CHARS = 60
# Display names that stand in for no name: "Yth. Bapak/Ibu Anonim" reads wrong.
_NOT_NAMES = frozenset(
    {"anon", "anonymous", "user", "rahasia", "-"}
    | {"hamba allah", "hamba alloh", "no name", "noname", "tanpa nama"}
)
# A display name that starts with one of these says who writes, not their name:
# "Warga Porong", "Pelapor", "Masyarakat Desa Glagaharum".
_NOT_NAME_STARTS = frozenset(
    {"warga", "pelapor", "pengadu", "masyarakat", "anonim", "admin", "rt", "rw"}
    | {"info", "operator", "kecamatan", "tidak", "saya", "no", "noreply"}
)
MAX_NAME_WORDS = 8
_HONORIFICS = re.compile(
    r"^(?:(?:yth|bapak|bpk|pak|ibu|bu|sdr|sdri|saudara|saudari|mas|mbak|cak|ning"
    r"|kak|om|tante|ny|tn|nn)(?:[.,]\s*|\s+|$))+",
    re.IGNORECASE,
)


# Academic titles written after a comma ("Budi Santoso, S.T."), not a given name.
_DEGREE_WORDS = (
    "sh st se mm mh msi mt spd mpd skom sip sos ssos sag amd mkes skm skep ners "
    "drs ir phd mba ma msc bsc sked"
)
_DEGREES = frozenset(_DEGREE_WORDS.split())


def greeting_name(name: str) -> str:
    """The complainant's name as the letters greet them.

    Drops a leading honorific (the letters say "Bapak/Ibu" already), turns a
    directory's "SANTOSO, BUDI" into "Budi Santoso", and capitalises a name
    written all in capitals or all in lower case.
    """
    # Emoji and other symbols are no part of a name ("Siti 😊").
    name = " ".join(
        "".join(c for c in name if unicodedata.category(c) not in _SYMBOLS).split()
    )
    bare = _HONORIFICS.sub("", name).strip()
    if not (_looks_like_a_name(name) and _looks_like_a_name(bare)):
        # Anyone can write a display name: a long one, or one with a link or
        # digits, would make the office's letter carry the sender's message to
        # whatever address they give.
        return ""

    family, comma, given = bare.partition(",")
    if comma and given.strip() and not _titles(given):
        bare = f"{given.strip()} {family.strip()}"
    if bare.isupper() or bare.islower():
        bare = bare.title()
    return bare


def _looks_like_a_name(name: str) -> bool:
    words = name.casefold().strip(" .,!").split()
    # Vowel signs (Javanese, Devanagari, vocalised Arabic), decomposed accents
    # and the joiners belong to the letters before them.
    letters = "".join(
        char
        for char in unicodedata.normalize("NFC", name)
        if not unicodedata.category(char).startswith("M") and char not in JOINERS
    )
    return (
        bool(words)
        and " ".join(words) not in _NOT_NAMES
        and words[0] not in _NOT_NAME_STARTS
        and _LINK.search(name) is None
        and len(name) <= MAX_NAME_CHARS
        and len(words) <= MAX_NAME_WORDS
        and _NAME.fullmatch(letters) is not None
    )


_SYMBOLS = frozenset({"So", "Sk", "Cs"})


def citizen_subject(subject: str) -> str:
    """A ticket's subject as letters to the complainant repeat it: no links and
    no phone numbers.

    The subject is the sender's text; a link or a number to call in it would
    reach whatever address the sender gave, in a letter from the office.
    """
    subject = _LINK.sub("[tautan]", subject)
    return PHONE_NUMBER.sub(
        lambda m: "[nomor telepon]" if is_phone(m) else m.group(0), subject
    )


def _titles(text: str) -> bool:
    words = [w.replace(".", "").lower() for w in text.replace(",", " ").split()]
    return "." in text or any(w in _DEGREES for w in words)
