"""The command line as an operator meets it: clear refusals, nothing created by
mistake, imports that read every file and say what they could not."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clirun import mailbot, tickets_json, write_config

DATA = Path(__file__).parent / "data"


def test_check_names_every_missing_secret_and_fails(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(
        '[office]\nsigning_key_env = "MAILBOT_NO_SUCH_KEY"\n'
        f'[storage]\ndata_dir = "{tmp_path}"\n'
        '[smtp]\nhost = "127.0.0.1"\nsecurity = "none"\nusername = "mailbot"\n'
        'password_env = "MAILBOT_NO_SUCH_PASSWORD"\n',
        "utf-8",
    )

    done = mailbot(config, "check", check=False)

    assert done.returncode == 1
    assert done.stdout.splitlines()[5:] == [
        "warning: no [[staff]] with role operator: mailbox alerts reach only the "
        "Kasubag Umum",
        "warning: no [[staff]] with role kasubag_umum: escalation passes this post "
        "over; mailbox alerts reach nobody",
        "warning: no [[staff]] with role sekcam: escalation passes this post over",
        "warning: no [[staff]] with role camat: escalation step 3 and the daily "
        "digest reach nobody",
        "problem: office.signing_key_env: environment variable MAILBOT_NO_SUCH_KEY "
        "is not set",
        "problem: smtp.password_env: environment variable MAILBOT_NO_SUCH_PASSWORD "
        "is not set",
    ]


def test_check_refuses_a_short_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_SHORT_KEY", "abc")
    config = tmp_path / "mailbot.toml"
    config.write_text(
        '[office]\nsigning_key_env = "MAILBOT_SHORT_KEY"\n'
        f'[storage]\ndata_dir = "{tmp_path}"\n',
        "utf-8",
    )

    done = mailbot(config, "check", check=False)

    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "problem: office.signing_key_env: the key in MAILBOT_SHORT_KEY has 3 bytes; "
        "it needs 16 or more"
    )


def test_check_warns_of_a_unit_nobody_hears_about(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n'
        '[[units]]\ncode = "umum"\nname = "Umum"\nfallback = true\n'
        'emails = ["umum@porong.example.go.id"]\n'
        '[[units]]\ncode = "kesos"\nname = "Kesos"\nkeywords = ["bansos"]\n'
        '[[units]]\ncode = "ekbang"\nname = "Ekbang"\nkeywords = ["jalan"]\n'
        '[[staff]]\nemail = "ekbang.staf@porong.example.go.id"\nname = "Hendra"\n'
        'unit = "ekbang"\n',
        "utf-8",
    )

    done = mailbot(config, "check", check=False)

    assert [line for line in done.stdout.splitlines() if " unit " in line] == [
        "warning: unit kesos has no emails and no [[staff]]: nobody is told of "
        "its tickets"
    ]


def test_check_warns_of_an_account_where_a_staff_from_is_enough(
    tmp_path: Path,
) -> None:
    account = 'port = 993\nusername = "x@example.go.id"\npassword_env = "P"\n'
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n'
        f'[[accounts]]\nname = "dinas"\nhost = "imap.example.go.id"\n{account}'
        f'[[accounts]]\nname = "gmail"\nhost = "imap.gmail.com"\n{account}'
        'trusted_authserv_id = "mx.google.com"\n',
        "utf-8",
    )

    done = mailbot(config, "check", check=False)

    assert [line for line in done.stdout.splitlines() if "account " in line] == [
        "warning: account dinas has no trusted_authserv_id: a staff address in From "
        "is enough to run commands",
    ]


def test_check_warns_of_a_data_dir_open_to_other_users(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.mkdir(mode=0o755)
    storage.chmod(0o755)
    config = write_config(tmp_path / "mailbot.toml", data_dir=storage)

    before = mailbot(config, "check", check=False)
    storage.chmod(0o700)
    after = mailbot(config, "check", check=False)

    assert [line for line in before.stdout.splitlines() if "data_dir " in line] == [
        f"warning: data_dir {storage} is open to other users (mode 755); it holds "
        "raw mail and KTP scans: chmod 700 it"
    ]
    assert [line for line in after.stdout.splitlines() if "data_dir " in line] == []


def test_send_refuses_to_start_without_its_secret(tmp_path: Path) -> None:
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path}"\n'
        '[smtp]\nhost = "127.0.0.1"\nsecurity = "none"\nusername = "mailbot"\n'
        'password_env = "MAILBOT_NO_SUCH_PASSWORD"\n',
        "utf-8",
    )

    done = mailbot(config, "send", check=False)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "configuration error: smtp.password_env: environment variable "
        "MAILBOT_NO_SUCH_PASSWORD is not set\n"
    )


def test_reading_commands_never_create_a_database(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    listed = mailbot(config, "tickets", "list", check=False)

    assert listed.returncode == 2
    assert listed.stderr == (
        "configuration error: storage.data_dir: no database at "
        f"{tmp_path / 'storage' / 'mailbot.sqlite3'}; run mailbot where its "
        "storage/ is, or set [storage] data_dir\n"
    )
    assert not (tmp_path / "storage" / "mailbot.sqlite3").exists()


def test_listing_tickets_of_an_unknown_unit_names_the_units(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    listed = mailbot(config, "tickets", "list", "--unit", "foo", check=False)

    assert (listed.returncode, listed.stdout) == (2, "")
    assert listed.stderr.splitlines()[-1] == (
        "Error: Invalid value for --unit: unknown unit 'foo' (units: umum, "
        "pemerintahan, trantib, pmd, kesos, pelayanan, ekbang)"
    )


def test_a_mistyped_reference_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    shown = mailbot(config, "tickets", "show", "PRG-2026-000001-4", check=False)

    assert (shown.returncode, shown.stdout) == (2, "")
    assert shown.stderr.splitlines()[-1] == (
        "Error: Invalid value for REFERENCE: 'PRG-2026-000001-4': the check digit "
        "does not match"
    )


def test_an_id_no_database_could_hold_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))
    # Trial 27: 2**31 and above overflowed PostgreSQL's INTEGER.
    huge = str(2**31)

    outbox = mailbot(config, "outbox", "retry", huge, check=False)
    quarantine = mailbot(config, "quarantine", "retry", huge, check=False)

    assert (outbox.returncode, quarantine.returncode) == (2, 2)
    assert outbox.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '[ID]...': {huge} is not in the range "
        "1<=x<=2147483647."
    )
    assert quarantine.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'INBOUND_ID': {huge} is not in the range "
        "1<=x<=2147483647."
    )


def test_a_folder_import_reads_files_whatever_their_names(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "deeper").mkdir(parents=True)
    (folder / "complaint").write_bytes(
        (DATA / "intake-complaint-ektp.eml").read_bytes()
    )
    (folder / "deeper" / "x.eml").write_bytes(
        (DATA / "intake-complaint-noise.eml").read_bytes()
    )
    (folder / ".hidden").write_bytes(b"editor state")
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    done = mailbot(config, "import", str(folder))

    assert done.stdout.strip() == (
        "imported 2 messages: 2 ticket, 0 follow_up, 0 staff, 0 automatic, "
        "0 duplicate, 0 quarantined, 0 forged"
    )
    assert len(tickets_json(config)) == 2


def test_a_file_that_is_no_mail_is_set_aside_once_with_that_reason(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "README.md").write_text("# Ekspor kotak masuk\n\nDaftar isi.\n")
    (folder / "a.eml").write_bytes((DATA / "intake-complaint-ektp.eml").read_bytes())
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    first = mailbot(config, "import", str(folder))
    again = mailbot(config, "import", str(folder))
    listed = mailbot(config, "quarantine", "list")

    assert first.stdout.strip() == (
        "imported 2 messages: 1 ticket, 0 follow_up, 0 staff, 0 automatic, "
        "0 duplicate, 1 quarantined, 0 forged"
    )
    assert again.stdout.strip() == (
        "imported 2 messages: 0 ticket, 0 follow_up, 0 staff, 0 automatic, "
        "2 duplicate, 0 quarantined, 0 forged"
    )
    assert "quarantined" not in again.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].split("  ")[1] == (
        "no header fields: not an email message, or its first line is broken"
    )


def test_what_mailbot_writes_is_for_its_own_user_only(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))

    storage = tmp_path / "storage"
    raw = next(storage.rglob("*.eml"))
    # The raw mail (KTP scans and all), its folders and the database; and
    # nothing else was written.
    checked = [storage, storage / "raw", raw.parent, raw, storage / "mailbot.sqlite3"]
    modes = [oct(stat.S_IMODE(p.stat().st_mode)) for p in checked]
    assert modes == ["0o700", "0o700", "0o700", "0o600", "0o600"]
    assert sorted(storage.rglob("*")) == sorted(checked[1:])


def test_tickets_show_tells_the_history_as_staff_read_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))

    shown = mailbot(config, "tickets", "show", "PRG-2026-000001-5").stdout

    after_time = [line.split(" WIB  ")[-1] for line in shown.splitlines()[7:]]
    assert after_time == [
        "history:",
        "mailbot  created",
        "    unit ekbang (kata kunci: pju, lampu, gelap, pasar)",
        "messages:",
        "in  complaint  from budi.santoso@example.com",
        "out  acknowledgement  budi.santoso@example.com",
        "out  unit_notification  ekbang.porong@example.go.id",
        "out  unit_notification  ekbang.staf@porong.example.go.id",
    ]


def test_import_counts_one_message_in_the_singular(tmp_path: Path) -> None:
    mail = tmp_path / "satu.eml"
    mail.write_bytes((DATA / "intake-complaint-ektp.eml").read_bytes())
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")

    done = mailbot(config, "import", str(mail))

    assert done.stdout.splitlines() == [
        "imported 1 message: 1 ticket, 0 follow_up, 0 staff, 0 automatic, "
        "0 duplicate, 0 quarantined, 0 forged"
    ]


def _quarantined_once(tmp_path: Path) -> tuple[Path, Path]:
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mail = tmp_path / "tanpa-pengirim.eml"
    mail.write_bytes(b"To: porong@sidoarjokab.go.id\nSubject: tanpa pengirim\n\nIsi.\n")
    mailbot(config, "import", str(mail))
    return config, next((tmp_path / "storage" / "raw").rglob("*.eml"))


def test_a_retry_refuses_an_archive_file_that_changed(tmp_path: Path) -> None:
    # Trial 29: a truncated archive file was run as the message, its text lost.
    config, raw = _quarantined_once(tmp_path)
    raw.write_bytes(raw.read_bytes()[:20])

    retried = mailbot(config, "quarantine", "retry", "1", check=False)
    listed = mailbot(config, "quarantine", "list")

    assert retried.returncode == 1
    assert retried.stderr.strip() == (
        f"error: quarantined message 1: {raw} does not hold the bytes received "
        "(its SHA-256 differs); not run again"
    )
    assert listed.stdout.splitlines()[0].startswith("1  ")


def test_a_retry_finds_the_archive_of_a_moved_data_folder_and_says_the_new_id(
    tmp_path: Path,
) -> None:
    # Trial 29: raw paths are stored whole; after a move, retry could not read.
    _quarantined_once(tmp_path)
    (tmp_path / "storage").rename(tmp_path / "moved")
    moved = write_config(tmp_path / "moved.toml", data_dir=tmp_path / "moved")

    retried = mailbot(moved, "quarantine", "retry", "1")
    listed = mailbot(moved, "quarantine", "list")

    assert retried.stdout.strip() == (
        "quarantined: no usable sender address in From (now set aside as 2)"
    )
    assert [line.split("  ")[0] for line in listed.stdout.splitlines()[::2]] == ["2"]


def test_a_reused_message_id_is_told_apart_after_the_data_folder_moved(
    tmp_path: Path,
) -> None:
    # Trial 29: with the earlier file not where its record said, a different
    # complaint with an old Message-ID was taken for a duplicate.
    def complaint(sender: str, subject: str) -> Path:
        path = tmp_path / f"{subject}.eml"
        path.write_bytes(
            f"From: {sender}\nTo: porong@sidoarjokab.go.id\nSubject: {subject}\n"
            "Message-ID: <form-1@web.example>\n\nMohon dibantu.\n".encode()
        )
        return path

    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(complaint("Budi <budi@example.com>", "Jalan")))
    (tmp_path / "storage").rename(tmp_path / "moved")
    moved = write_config(tmp_path / "moved.toml", data_dir=tmp_path / "moved")

    done = mailbot(moved, "import", str(complaint("Siti <siti@example.net>", "Banjir")))

    assert done.stdout.strip() == (
        "imported 1 message: 1 ticket, 0 follow_up, 0 staff, 0 automatic, "
        "0 duplicate, 0 quarantined, 0 forged"
    )


def test_staff_mail_taken_as_forged_is_listed_and_runs_once_the_setting_is_right(
    tmp_path: Path,
) -> None:
    # Trial 32: with a mistyped trusted server every genuine staff command was
    # set aside unseen, and nothing could run it again once the setting was fixed.
    def config_with(server: str) -> Path:
        return write_config(
            tmp_path / "mailbot.toml",
            data_dir=tmp_path / "storage",
            extra=f'[security]\ntrusted_authserv_id = "{server}"\n',
        )

    config = config_with("mx.porong.example.go.id.typo")
    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))
    reply = tmp_path / "reply.eml"
    reply.write_bytes(
        b"Authentication-Results: mx.porong.example.go.id; "
        b"dkim=pass header.d=porong.example.go.id\n"
        b"From: Staf Ekbang <ekbang.staf@porong.example.go.id>\n"
        b"To: porong@sidoarjokab.go.id\n"
        b"Subject: Re: [PRG-2026-000001-5] Pengaduan baru\n"
        b"Message-ID: <staf-1@porong.example.go.id>\n\n"
        b"#catatan Petugas PJU dijadwalkan besok.\n"
    )
    imported = mailbot(config, "import", str(reply))
    listed = mailbot(config, "quarantine", "list").stdout.splitlines()

    config = config_with("mx.porong.example.go.id")
    retried = mailbot(config, "quarantine", "retry", "2")
    after = mailbot(config, "quarantine", "list")

    assert "1 forged" in imported.stdout
    assert listed[1].split("  ")[1] == (
        "forged staff sender: topmost Authentication-Results is not our server's"
    )
    assert retried.stdout.strip() == "staff: PRG-2026-000001-5"
    assert after.stdout.strip() == "no quarantined messages"


def test_after_a_restore_the_counter_moves_past_the_references_sent(
    tmp_path: Path,
) -> None:
    # Trial 33: a restored database gave the numbers sent after the backup to
    # other complainants again.
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))

    before = mailbot(config, "references", "--year", "2026").stdout
    asked = mailbot(config, "references", "--year", "2026", "--last", "40", check=False)
    moved = mailbot(
        config, "references", "--year", "2026", "--last", "40", "--yes"
    ).stdout
    back = mailbot(config, "references", "--year", "2026", "--last", "3", check=False)
    too_far = mailbot(
        config, "references", "--last", "999999", "--yes", check=False
    ).returncode
    mailbot(config, "import", str(DATA / "intake-complaint-flood.eml"))

    assert (
        before
        == "2026: last reference PRG-2026-000001-5; the next is PRG-2026-000002-8\n"
    )
    assert (
        moved
        == "2026: last reference PRG-2026-000040-5; the next is PRG-2026-000041-8\n"
    )
    assert (back.returncode, back.stderr) == (
        1,
        "error: 2026: 40 references are given out already; the counter never goes "
        "back\n",
    )
    # Without --yes and without a terminal to answer, nothing moves.
    assert (asked.returncode, asked.stderr.splitlines()[-1]) == (1, "aborted")
    assert too_far == 2
    assert [row["reference"] for row in tickets_json(config)] == [
        "PRG-2026-000001-5",
        "PRG-2026-000041-8",
    ]


def test_a_database_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    # Trial 33: psycopg's hint ("Is the server running ...") made it two.
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
    )

    listed = mailbot(config, "tickets", "list", check=False)

    assert (listed.returncode, listed.stderr) == (
        1,
        'error: database: connection failed: connection to server at "127.0.0.1", '
        "port 1 failed: Connection refused\n",
    )


def test_outbox_list_tells_when_to_whom_and_the_servers_whole_answer(
    tmp_path: Path,
) -> None:
    # Trial 33: no time, no recipient, and the server's answer cut at 60.
    config = write_config(tmp_path / "mailbot.toml", data_dir=tmp_path / "storage")
    mailbot(config, "import", str(DATA / "intake-complaint-street-light.eml"))
    mailbot(config, "send")

    listed = mailbot(config, "outbox", "list").stdout.splitlines()
    first = json.loads(mailbot(config, "outbox", "list", "--json").stdout)[0]

    sent = datetime.fromisoformat(first["sent_at"]).astimezone(ZoneInfo("Asia/Jakarta"))
    assert listed[:2] == [
        f"1  {sent:%Y-%m-%d %H:%M} WIB  PRG-2026-000001-5  acknowledgement  sent  1",
        f"  {first['recipients'][0]}  {first['last_reply']}",
    ]
    assert first["recipients"] == ["budi.santoso@example.com"]


def test_a_forged_mail_is_told_once_to_the_address_it_claims_without_its_links(
    tmp_path: Path,
) -> None:
    # Trial 36: the letter repeated the forger's link and number from the
    # office's address, and each retry that failed again sent another.
    config = write_config(
        tmp_path / "mailbot.toml",
        data_dir=tmp_path / "storage",
        extra='[security]\ntrusted_authserv_id = "mx.porong.example.go.id"\n',
    )
    forged = tmp_path / "forged.eml"
    forged.write_bytes(
        b"From: Staf Ekbang <ekbang.staf@porong.example.go.id>\n"
        b"To: porong@sidoarjokab.go.id\n"
        b"Subject: Akun diblokir, buka http://porong-login.example/x atau "
        b"WA 0812-3456-7890\n"
        b"Message-ID: <palsu-1@evil.example>\n\n#status\n"
    )
    mailbot(config, "import", str(forged))

    retried = mailbot(config, "quarantine", "retry", "1").stdout.strip()
    mailbot(config, "send")

    letters = json.loads(mailbot(config, "outbox", "list", "--json").stdout)
    assert retried == "forged: no Authentication-Results of ours (now set aside as 2)"
    assert [(row["kind"], row["recipients"]) for row in letters] == [
        ("unverified_staff_mail", ["ekbang.staf@porong.example.go.id"])
    ]
    (sent,) = (tmp_path / "storage" / "outbox").glob("*.eml")
    text = sent.read_text("utf-8")
    assert "Akun diblokir, buka [tautan] atau WA [nomor telepon]" in text
    assert "porong-login" not in text
