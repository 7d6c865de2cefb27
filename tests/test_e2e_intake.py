"""End to end through the real CLI: two Dovecot inboxes -> tickets -> aiosmtpd.

Complaints are appended to two IMAP accounts (one sent to both), ``mailbot poll
--once`` and ``mailbot send`` run as processes, and everything the SMTP server
received is checked.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clirun import Inbox, account_toml, mailbot, tickets_json, write_config
from dovecot import DovecotServer, ImapUser
from servers import wait_until
from smtpsink import SmtpSink

from mailbot.references import Reference

DATA = Path(__file__).parent / "data"
DINAS_FILES = [
    "intake-complaint-street-light.eml",
    "intake-complaint-ektp.eml",
    "intake-complaint-noise.eml",
    "intake-auto-reply.eml",
    "intake-complaint-to-both-inboxes.eml",
]
GMAIL_FILES = [
    "intake-complaint-flood.eml",
    "intake-complaint-bansos.eml",
    "intake-complaint-to-both-inboxes.eml",
]


def _reference(seq: int) -> str:
    year = datetime.now(ZoneInfo("Asia/Jakarta")).year
    return str(Reference("PRG", year, seq))


def _parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=default)


@pytest.fixture
def office(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    smtp_sink: SmtpSink,
    database_url: str,
) -> tuple[Path, Inbox, Inbox]:
    dinas = Inbox("dinas", imap_users(), "porong@sidoarjokab.go.id")
    gmail = Inbox("gmail", imap_users(), "kecamatanporong@gmail.com")
    accounts = [
        account_toml(dovecot, dinas),
        account_toml(dovecot, gmail, processed_folder="Pengaduan/Diproses"),
    ]
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=accounts,
        smtp=smtp_sink,
        database_url=database_url,
    )
    return config, dinas, gmail


def _append_all(dovecot: DovecotServer, inbox: Inbox, names: list[str]) -> None:
    for name in names:
        dovecot.append(inbox.user, (DATA / name).read_bytes())


def test_complaints_become_routed_tickets_and_are_acknowledged(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    config, dinas, gmail = office
    _append_all(dovecot, dinas, DINAS_FILES)
    _append_all(dovecot, gmail, GMAIL_FILES)

    polled = mailbot(config, "poll", "--once")
    sent = mailbot(config, "send")

    assert polled.stdout.splitlines() == [
        "dinas: 5 fetched (1 automatic, 4 ticket)",
        "gmail: 3 fetched (1 duplicate, 2 ticket)",
    ]
    # Six acknowledgements, and six unit notices plus one more to the ekbang
    # staff member for each of the two ekbang tickets.
    assert sent.stdout.strip() == "sent 14, deferred 0, failed 0"
    tickets = tickets_json(config)
    assert [(t["reference"], t["unit"], t["complainant_email"]) for t in tickets] == [
        (_reference(1), "ekbang", "budi.santoso@example.com"),
        (_reference(2), "pelayanan", "siti.rahayu@example.net"),
        (_reference(3), "trantib", "ahmad.fauzi@example.org"),
        (_reference(4), "umum", "joko.susilo@example.org"),
        (_reference(5), "ekbang", "dewi.lestari@example.com"),
        (_reference(6), "kesos", "sri.wahyuni@example.net"),
    ]
    assert {t["status"] for t in tickets} == {"received"}
    assert [t["message_count"] for t in tickets] == [4, 3, 3, 3, 4, 3]


def test_acknowledgement_headers_and_recipients(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    config, dinas, gmail = office
    _append_all(dovecot, dinas, DINAS_FILES[:1])
    _append_all(dovecot, gmail, GMAIL_FILES[:1])

    mailbot(config, "poll", "--once")
    mailbot(config, "send")

    assert sorted(m.rcpt_tos for m in smtp_sink.messages) == [
        ("budi.santoso@example.com",),
        ("dewi.lestari@example.com",),
        ("ekbang.porong@example.go.id",),
        ("ekbang.porong@example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
    ]
    acks = [m for m in smtp_sink.messages if m.rcpt_tos[0].endswith("example.com")]
    budi = _parse(
        next(m.raw for m in acks if m.rcpt_tos == ("budi.santoso@example.com",))
    )
    assert budi["Subject"] == (
        f"[{_reference(1)}] Pengaduan diterima: Lampu PJU mati di Jl. Raya Porong"
    )
    assert budi["In-Reply-To"] == "<pju-20261201@example.com>"
    assert budi["References"] == "<pju-20261201@example.com>"
    assert budi["Auto-Submitted"] == "auto-replied"
    assert budi["Reply-To"] == "porong@sidoarjokab.go.id"
    assert budi["To"] == "budi.santoso@example.com"
    assert budi["Message-ID"].startswith(f"<prg{_reference(1)[4:8]}000001.r")
    dewi = _parse(
        next(m.raw for m in acks if m.rcpt_tos == ("dewi.lestari@example.com",))
    )
    assert dewi["Reply-To"] == "kecamatanporong@gmail.com"
    assert smtp_sink.messages[0].mail_from == "porong@sidoarjokab.go.id"


def test_second_poll_creates_and_sends_nothing(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    config, dinas, gmail = office
    _append_all(dovecot, dinas, DINAS_FILES)
    _append_all(dovecot, gmail, GMAIL_FILES)
    mailbot(config, "poll", "--once")
    mailbot(config, "send")

    again = mailbot(config, "poll", "--once")
    resend = mailbot(config, "send")

    assert again.stdout.splitlines() == ["dinas: 0 fetched", "gmail: 0 fetched"]
    assert resend.stdout.strip() == "sent 0, deferred 0, failed 0"
    assert len(smtp_sink.messages) == 14
    assert len(tickets_json(config)) == 6
    seen = dovecot.flags(dinas.user)
    assert sorted(seen) == [1, 2, 3, 4, 5]
    assert all("\\Seen" in flags for flags in seen.values())
    assert dovecot.folder_uids(gmail.user) == []
    assert len(dovecot.folder_uids(gmail.user, "Pengaduan/Diproses")) == 3


def test_citizen_reply_to_the_acknowledgement_is_a_follow_up(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    config, dinas, _ = office
    _append_all(dovecot, dinas, DINAS_FILES[:1])
    mailbot(config, "poll", "--once")
    mailbot(config, "send")
    ack = _parse(next(m.raw for m in smtp_sink.messages if "budi" in m.rcpt_tos[0]))
    reply = textwrap.dedent(
        f"""\
        From: Budi Santoso <budi.santoso@example.com>
        To: porong@sidoarjokab.go.id
        Subject: Re: {ack["Subject"]}
        Date: Wed, 02 Dec 2026 07:00:00 +0700
        Message-ID: <pju-reply-1@example.com>
        In-Reply-To: {ack["Message-ID"]}
        References: <pju-20261201@example.com> {ack["Message-ID"]}
        Content-Type: text/plain; charset="utf-8"

        Lampunya masih mati sampai pagi ini.
        """
    ).encode()

    dovecot.append(dinas.user, reply)
    polled = mailbot(config, "poll", "--once")
    sent = mailbot(config, "send")

    assert polled.stdout.splitlines()[0] == "dinas: 1 fetched (1 follow_up)"
    assert sent.stdout.strip() == "sent 2, deferred 0, failed 0"
    notice = _parse(smtp_sink.messages[-1].raw)
    assert sorted(m.rcpt_tos for m in smtp_sink.messages[-2:]) == [
        ("ekbang.porong@example.go.id",),
        ("ekbang.staf@porong.example.go.id",),
    ]
    assert notice["Subject"] == (
        f"[{_reference(1)}] Tambahan dari pelapor: Lampu PJU mati di Jl. Raya Porong"
    )
    tickets = tickets_json(config)
    assert [(t["reference"], t["message_count"]) for t in tickets] == [
        (_reference(1), 7)
    ]


CRASHING_POLL = """
import os, sys
from mailbot.app import App
from mailbot.config import load_settings
from pathlib import Path

app = App.build(load_settings(Path(sys.argv[1])))
real_open = app.open_mailbox

class DiesBeforeMarking:
    # Stands for a power cut after intake committed, before \\\\Seen was stored.
    def __init__(self, box): self.box = box
    def __enter__(self): self.box.__enter__(); return self
    def __exit__(self, *exc): return self.box.__exit__(*exc)
    def __getattr__(self, name): return getattr(self.box, name)
    def mark_handled(self, uids): os._exit(137)

app.open_mailbox = lambda account: DiesBeforeMarking(real_open(account))
app.poller().poll_all(app.settings.accounts)
"""


def test_kill_between_commit_and_marking_leaves_no_duplicate(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer, smtp_sink: SmtpSink
) -> None:
    config, dinas, _ = office
    _append_all(dovecot, dinas, DINAS_FILES[:3])
    env = {"MAILBOT_TEST_SIGNING_KEY": "test-signing-key-0123456789abcdef"}

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_POLL, str(config)],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    after_crash = tickets_json(config)
    polled = mailbot(config, "poll", "--once")
    mailbot(config, "send")

    assert crashed.returncode == 137
    assert len(after_crash) == 3
    assert polled.stdout.splitlines()[0] == "dinas: 3 fetched (3 duplicate)"
    assert [t["reference"] for t in tickets_json(config)] == [
        _reference(1),
        _reference(2),
        _reference(3),
    ]
    assert all("\\Seen" in f for f in dovecot.flags(dinas.user).values())
    # Three acknowledgements, three unit notices, one to the ekbang staff member.
    wait_until(lambda: len(smtp_sink.messages) == 7, 5, "seven letters")
    assert len(smtp_sink.messages) == 7


def test_a_long_sender_name_is_cut_and_an_unanswerable_address_refused(
    office: tuple[Path, Inbox, Inbox], dovecot: DovecotServer
) -> None:
    # Trial 27: PostgreSQL refused both, and the complaint was lost to an
    # error whose text held the citizen's data.
    config, dinas, _ = office
    name = "Siti Nur " * 26
    local = "w" * 330
    for sender in (
        f"{name.strip()} <siti@example.net>",
        f"Warga <{local}@example.net>",
    ):
        raw = (
            f"From: {sender}\r\nTo: porong@sidoarjokab.go.id\r\nSubject: Banjir\r\n"
            f"Message-ID: <{len(sender)}@example.net>\r\n\r\nBanjir di Gedang.\r\n"
        )
        dovecot.append(dinas.user, raw.encode())

    polled = mailbot(config, "poll", "--once")
    listed = mailbot(config, "quarantine", "list")

    assert polled.stdout.splitlines() == [
        "dinas: 2 fetched (1 quarantined, 1 ticket)",
        "gmail: 0 fetched",
    ]
    [ticket] = tickets_json(config)
    assert len(ticket["complainant_name"]) == 200
    assert ticket["complainant_name"] == name.strip()[:200]
    assert listed.stdout.splitlines()[1].split("  ")[1] == (
        "sender address longer than 254 characters; cannot answer it"
    )
    assert "Siti" not in listed.stdout + listed.stderr
