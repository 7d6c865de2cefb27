"""Privacy: no NIK or phone number in logs or listings, no secret in any log."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from clirun import SIGNING_KEY, Inbox, account_toml, mailbot, tickets_json, write_config
from dovecot import DovecotServer, ImapUser
from servers import LOOPBACK
from smtpsink import SmtpSink

from mailbot.app import App
from mailbot.config import SmtpConfig, load_settings
from mailbot.errors import DeliveryError, MailboxError
from mailbot.identity import carries_identity, mask
from mailbot.imap import Mailbox
from mailbot.outbox import deliver_due
from mailbot.redaction import MaskingFilter
from mailbot.transport import SmtpTransport

NIK = "3515082305870004"
PHONE = "081234567890"
COMPLAINT = textwrap.dedent(
    f"""\
    From: Siti {NIK} <siti.rahayu@example.net>
    To: porong@sidoarjokab.go.id
    Subject: KTP hilang, NIK {NIK}, hubungi {PHONE}
    Date: Wed, 02 Dec 2026 08:00:00 +0700
    Message-ID: <ktp-hilang@example.net>
    Content-Type: text/plain; charset="utf-8"

    KTP saya hilang, mohon dibantu.
    """
).encode()


def test_filter_masks_message_arguments_and_tracebacks() -> None:
    record = logging.LogRecord(
        "mailbot.x", logging.WARNING, __file__, 1, "reason: %s", (f"NIK {NIK}",), None
    )
    try:
        raise ValueError(f"cannot read {PHONE}")
    except ValueError as exc:
        failing = logging.LogRecord(
            "mailbot.x",
            logging.ERROR,
            __file__,
            1,
            "failed",
            (),
            (type(exc), exc, exc.__traceback__),
        )

    MaskingFilter().filter(record)
    MaskingFilter().filter(failing)

    assert record.getMessage() == "reason: NIK 351508******0004"
    assert failing.exc_text is not None
    assert failing.exc_text.endswith("ValueError: cannot read 081******90")


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("NIK 3515 0823 0587 0004.", "NIK 351508******0004."),
        ("NIK: 35.15.08.230587.0004", "NIK: 351508******0004"),
        ("3515-08-230587-0004", "351508******0004"),
        # Trial 32: glued to a word, slashes, tabs and double spaces.
        ("NIK.3515082305870004", "NIK.351508******0004"),
        ("KTP-3515082305870004", "KTP-351508******0004"),
        ("3515/0823/0587/0004", "351508******0004"),
        ("3515  0823\t0587 0004", "351508******0004"),
        # Not sixteen digits: a date, a 17-digit number, an account of 15.
        ("2026-12-04 12:00", "2026-12-04 12:00"),
        ("12345678901234567", "12345678901234567"),
        ("1234 5678 9012 345", "1234 5678 9012 345"),
        ("1.3515082305870004", "1.3515082305870004"),
        # Trial 34: sixteen digits that are no NIK: a letter number, a card
        # number.
        ("Surat nomor 470/123/438.6.12/2026", "Surat nomor 470/123/438.6.12/2026"),
        ("kartu 4111 1111 1111 1111", "kartu 4111 1111 1111 1111"),
        # A woman's NIK has 40 added to the day of birth.
        ("NIK 3515086305870004", "NIK 351508******0004"),
        # Trial 35: a NIK beside another number was neither masked nor read.
        ("Lapor RT 3 3515082305870004", "Lapor RT 3 351508******0004"),
    ],
)
def test_a_nik_in_the_groups_people_type_is_masked_and_counts(
    written: str, masked: str
) -> None:
    # Trial 28: grouped NIKs were neither masked nor taken as identity.
    assert mask(written) == masked
    assert carries_identity(written, []) is (masked != written)


def test_a_family_card_number_is_masked_but_is_no_identity() -> None:
    # Trial 35: the number of the KK, which has a NIK's shape, stood for a KTP.
    given = ["No KK saya 3515081204150003", "Kartu Keluarga: 3515081204150003"]

    assert [(mask(text), carries_identity(text, [])) for text in given] == [
        ("No KK saya 351508******0003", False),
        ("Kartu Keluarga: 351508******0003", False),
    ]
    assert carries_identity("Nomor KK dan NIK saya: 3515082305870004", []) is True
    # A prepaid-electricity token of twenty digits: masked in part, harmless.
    token = "token 1234 5678 9012 3456 7890"
    assert (mask(token), carries_identity(token, [])) == (
        "token 123456******3456 7890",
        False,
    )


def test_a_nik_mistyped_in_its_date_is_masked_but_is_no_identity() -> None:
    written = "NIK 3515083505870004"

    assert (mask(written), carries_identity(written, [])) == (
        "NIK 351508******0004",
        False,
    )


def test_cli_log_lines_and_ticket_list_mask_identity_numbers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mail = tmp_path / "ktp.eml"
    mail.write_bytes(COMPLAINT)
    robot = tmp_path / "robot.eml"
    robot.write_bytes(
        COMPLAINT.replace(b"Message-ID: <ktp", b"Message-ID: <robot").replace(
            b"Content-Type",
            f"Auto-Submitted: auto-replied {PHONE}\nContent-Type".encode(),
        )
    )

    imported = mailbot(config, "-vv", "import", str(mail), str(robot))
    listing = mailbot(config, "tickets", "list")
    rows = tickets_json(config)

    assert "imported 2 messages: 1 ticket" in imported.stdout
    assert "Auto-Submitted: auto-replied 081******90" in imported.stderr
    for text in (imported.stderr, listing.stdout, str(rows)):
        assert NIK not in text
        assert PHONE not in text
    assert rows[0]["subject"] == "KTP hilang, NIK 351508******0004, hubungi 081******90"
    assert rows[0]["complainant_name"] == "Siti 351508******0004"
    assert "KTP hilang, NIK 351508******0004, hubungi 081******90" in listing.stdout


def _office(
    tmp_path: Path, dovecot: DovecotServer, user: ImapUser, sink: SmtpSink, env: str
) -> Path:
    inbox = Inbox("dinas", user, "porong@sidoarjokab.go.id")
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        accounts=[account_toml(dovecot, inbox)],
    )
    smtp = (
        f'[smtp]\nhost = "{LOOPBACK}"\nport = {sink.port}\nsecurity = "none"\n'
        f'username = "mailbot"\npassword_env = "{env}"\nmax_attempts = 1\n'
    )
    config.write_text(config.read_text() + smtp)
    mailbot(config, "upgrade")
    return config


def test_no_password_in_any_log_record_of_a_poll_and_a_send(
    tmp_path: Path,
    *,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sinks: Callable[..., SmtpSink],
    secret_env: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp_password = "smtp-Rahasia-8812"
    sink = smtp_sinks(auth=("mailbot", smtp_password))
    config = _office(tmp_path, dovecot, imap_user, sink, secret_env(smtp_password))
    monkeypatch.setenv("MAILBOT_TEST_SIGNING_KEY", SIGNING_KEY)
    dovecot.append(imap_user, COMPLAINT)
    caplog.set_level(logging.DEBUG)
    app = App.build(load_settings(config))
    reports = app.poller().poll_all(app.settings.accounts)
    assert app.settings.smtp is not None
    transport = app.transport()
    delivered = deliver_due(app.sessions, transport, app.settings.smtp, app.clock)
    transport.close()

    assert [r.outcomes for r in reports] == [{"ticket": 1}]
    assert delivered.sent == 2
    assert sink.messages[0].login == "mailbot"
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "logged in" in logged
    for secret in (imap_user.password, smtp_password):
        assert secret not in logged


def test_wrong_passwords_are_not_repeated_in_errors(
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sinks: Callable[..., SmtpSink],
    secret_env: Callable[[str], str],
) -> None:
    wrong = "salah-Sandi-4471"
    sink = smtp_sinks(auth=("mailbot", "the-right-one"))
    account = dovecot.account(imap_user, password_env=secret_env(wrong))
    smtp = SmtpConfig(
        host=LOOPBACK,
        port=sink.port,
        security="none",
        username="mailbot",
        password_env=secret_env(wrong),
    )

    with pytest.raises(MailboxError) as imap_error:
        Mailbox(account).open()
    with pytest.raises(DeliveryError) as smtp_error:
        SmtpTransport(smtp).deliver("porong@sidoarjokab.go.id", ["a@b.example"], b"x")

    assert str(imap_error.value) == (
        "account porong: log in failed: [AUTHENTICATIONFAILED] Authentication failed."
    )
    assert wrong not in str(smtp_error.value)
    assert wrong not in repr(smtp_error.value.__cause__)
    assert smtp_error.value.reply == (
        f"cannot use SMTP server {LOOPBACK}:{sink.port}: "
        "(535, b'5.7.8 Authentication credentials invalid')"
    )
