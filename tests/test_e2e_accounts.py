"""End to end through the CLI: TLS and AUTH, Gmail's XOAUTH2, a broken account,
and a folder whose UIDVALIDITY changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clirun import Inbox, account_toml, mailbot, tickets_json, write_config
from dovecot import DovecotServer, ImapUser
from oauthserver import OAuthServer
from servers import LOOPBACK, TlsFiles
from smtpsink import SmtpSink

DATA = Path(__file__).parent / "data"
COMPLAINT = (DATA / "intake-complaint-ektp.eml").read_bytes()
OTHER = (DATA / "intake-complaint-noise.eml").read_bytes()


def test_imaps_and_smtp_starttls_with_auth_verified_against_the_test_ca(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sinks: Callable[..., SmtpSink],
    secret_env: Callable[[str], str],
    tls: TlsFiles,
) -> None:
    sink = smtp_sinks(mode="starttls", auth=("mailbot", "rahasia-smtp"))
    account = (
        '[[accounts]]\nname = "dinas"\n'
        f'host = "{LOOPBACK}"\nport = {dovecot.imaps_port}\nsecurity = "ssl"\n'
        f'ca_file = "{tls.ca_file}"\nusername = "{imap_user.address}"\n'
        'address = "porong@sidoarjokab.go.id"\n'
        f'password_env = "{imap_user.password_env}"\n'
    )
    smtp = (
        f'[smtp]\nhost = "{LOOPBACK}"\nport = {sink.port}\nsecurity = "starttls"\n'
        f'ca_file = "{tls.ca_file}"\nusername = "mailbot"\n'
        f'password_env = "{secret_env("rahasia-smtp")}"\n'
    )
    config = write_config(
        tmp_path / "m.toml", data_dir=tmp_path / "s", accounts=[account], extra=smtp
    )
    dovecot.append(imap_user, COMPLAINT)

    polled = mailbot(config, "poll", "--once")
    sent = mailbot(config, "send")

    assert polled.stdout.splitlines() == ["dinas: 1 fetched (1 ticket)"]
    assert sent.stdout.strip() == "sent 2, deferred 0, failed 0"
    assert [(m.rcpt_tos, m.login) for m in sink.messages] == [
        (("siti.rahayu@example.net",), "mailbot"),
        (("pelayanan.porong@example.go.id",), "mailbot"),
    ]


def test_gmail_xoauth2_polls_while_a_broken_account_is_reported(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_users: Callable[[], ImapUser],
    oauth_server: OAuthServer,
    secret_env: Callable[[str], str],
) -> None:
    broken = Inbox("dinas", imap_users(), "porong@sidoarjokab.go.id")
    broken_toml = account_toml(dovecot, broken).replace(
        f'password_env = "{broken.user.password_env}"',
        f'password_env = "{secret_env("kata-sandi-lama")}"',
    )
    gmail_user = imap_users()
    refresh = oauth_server.issue_refresh_token(gmail_user.address)
    gmail_toml = (
        '[[accounts]]\nname = "gmail"\n'
        f'host = "{LOOPBACK}"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
        f'username = "{gmail_user.address}"\naddress = "kecamatanporong@gmail.com"\n'
        'auth = "oauth2"\n'
        f'oauth2_token_url = "{oauth_server.token_url}"\n'
        f'oauth2_client_id = "{oauth_server.client_id}"\n'
        f'oauth2_client_secret_env = "{secret_env(oauth_server.client_secret)}"\n'
        f'oauth2_refresh_token_env = "{secret_env(refresh)}"\n'
    )
    config = write_config(
        tmp_path / "m.toml", data_dir=tmp_path / "s", accounts=[broken_toml, gmail_toml]
    )
    dovecot.append(broken.user, OTHER)
    dovecot.append(gmail_user, COMPLAINT)

    polled = mailbot(config, "poll", "--once", check=False)

    assert polled.returncode == 1
    lines = polled.stdout.splitlines()
    assert lines[0] == (
        "dinas: error: account dinas: log in failed: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert "kata-sandi-lama" not in polled.stdout + polled.stderr
    assert lines[1] == "gmail: 1 fetched (1 ticket)"
    assert [t["complainant_email"] for t in tickets_json(config)] == [
        "siti.rahayu@example.net"
    ]


def test_changed_uidvalidity_resynchronises_without_duplicates(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    inbox = Inbox("dinas", imap_user, "porong@sidoarjokab.go.id")
    config = write_config(
        tmp_path / "m.toml",
        data_dir=tmp_path / "s",
        accounts=[account_toml(dovecot, inbox, folder="Pengaduan")],
    )
    dovecot.append(imap_user, COMPLAINT, folder="Pengaduan")
    first = mailbot(config, "poll", "--once")
    with dovecot.session(imap_user) as client:
        client.delete_folder("Pengaduan")
    dovecot.append(imap_user, COMPLAINT, folder="Pengaduan")
    dovecot.append(imap_user, OTHER, folder="Pengaduan")

    second = mailbot(config, "poll", "--once")

    assert first.stdout.splitlines() == ["dinas: 1 fetched (1 ticket)"]
    assert second.stdout.splitlines() == ["dinas: 2 fetched (1 duplicate, 1 ticket)"]
    assert "UIDVALIDITY changed" in second.stderr
    assert len(tickets_json(config)) == 2
