"""A private Dovecot for the tests, on 127.0.0.1: IMAP, IMAPS and LMTP.

The settings and their traps are explained in the team notes on test mail
servers; a server can be stopped and started again on the same ports.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import string
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from servers import LOOPBACK, Restartable, TlsFiles, free_ports, wait_until

from mailbot.config import AccountConfig, Security

DOVECOT = "/usr/sbin/dovecot"
MAIL_DOMAIN = "porong.test"


_DOVECOT_CONF = string.Template("""\
instance_name = dovecot-test-$pid-$imap_port
base_dir = $root/run
state_dir = $root/state
log_path = $root/dovecot.log
protocols = imap lmtp
listen = $loopback
ssl = yes
ssl_cert = <$cert_file
ssl_key = <$key_file
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $root/users
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $root/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$root/mail/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
}
lda_mailbox_autocreate = yes
service imap-login {
  inet_listener imap {
    port = $imap_port
  }
  inet_listener imaps {
    port = $imaps_port
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = $loopback
    port = $lmtp_port
  }
}
mail_fsync = never
# no 2 s delay and no growing per-IP penalty after a failed login
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
""")

_ROOTLESS_CONF = string.Template("""\
default_internal_user = $user
default_internal_group = $group
default_login_user = $user
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
""")

_OAUTH2_CONF = string.Template("""\
introspection_mode = post
introspection_url = $url
username_attribute = email
active_attribute = active
active_value = true
force_introspection = yes
""")

_LOG_PROBLEM = re.compile(r"\b(Error|Fatal|Panic):")


@dataclass(frozen=True)
class ImapUser:
    """A mailbox on the test Dovecot; ``password_env`` names a variable holding it."""

    address: str
    password: str
    password_env: str | None = None


def dovecot_version() -> str:
    """The installed Dovecot's version; the configuration here is 2.3 syntax."""
    out = subprocess.run(
        [DOVECOT, "--version"], capture_output=True, text=True, check=True
    )
    version = out.stdout.strip()
    if not version.startswith("2.3."):
        raise RuntimeError(
            f"the test Dovecot configuration needs Dovecot 2.3, found {version}"
        )
    return version


def _die_with_parent() -> None:
    # Runs in the child: SIGTERM when the test process dies, even on SIGKILL.
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _scratch_dir() -> Path:
    # Unix socket paths under it must stay below 108 bytes: keep it short.
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="dovecot-test-", dir=parent))
    root.chmod(0o755)
    return root


class DovecotServer(Restartable):
    """A private Dovecot with a pool of ready users, run as a child process."""

    def __init__(self, tls: TlsFiles, introspection_url: str, pool: int = 500) -> None:
        dovecot_version()
        self.root = _scratch_dir()
        self.tls = tls
        self.imap_port, self.imaps_port, self.lmtp_port = free_ports(3)
        self.users = [
            ImapUser(f"warga{n:03d}@{MAIL_DOMAIN}", "pw-" + secrets.token_urlsafe(12))
            for n in range(pool)
        ]
        self._handed_out = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files(introspection_url)

    def _write_files(self, introspection_url: str) -> None:
        lines = [f"{u.address}:{{PLAIN}}{u.password}::::::\n" for u in self.users]
        (self.root / "users").write_text("".join(lines))
        (self.root / "oauth2.conf.ext").write_text(
            _OAUTH2_CONF.substitute(url=introspection_url)
        )
        (self.root / "mail").mkdir()
        (self.root / "dovecot.conf").write_text(self._config())

    def _config(self) -> str:
        fields = {
            "pid": os.getpid(),
            "root": self.root,
            "loopback": LOOPBACK,
            "cert_file": self.tls.cert_file,
            "key_file": self.tls.key_file,
            "imap_port": self.imap_port,
            "imaps_port": self.imaps_port,
            "lmtp_port": self.lmtp_port,
        }
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()
            rootless = _ROOTLESS_CONF.substitute(
                user=pwd.getpwuid(uid).pw_name, group=grp.getgrgid(gid).gr_name
            )
            return (
                _DOVECOT_CONF.substitute(fields, mail_uid=uid, mail_gid=gid) + rootless
            )

        # As root the mail must belong to an ordinary uid (>= 500, not 0).
        nobody = pwd.getpwnam("nobody")
        os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        return _DOVECOT_CONF.substitute(
            fields, mail_uid=nobody.pw_uid, mail_gid=nobody.pw_gid
        )

    # --- life cycle --------------------------------------------------------

    def start(self) -> None:
        """Start Dovecot (again) on its ports; return once IMAP greets."""
        output = (self.root / "master.out").open("ab")
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            # No other threads fork here; the child only calls prctl.
            preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        output.close()
        wait_until(self._greets, 15.0, "the Dovecot IMAP greeting")

    def _greets(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"Dovecot exited at start:\n{self.log_tail()}")
        try:
            with socket.create_connection((LOOPBACK, self.imap_port), 1.0) as sock:
                return sock.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop Dovecot (about 1.1 s: its master sleeps a second on purpose)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def remove(self) -> None:
        """Delete the scratch directory (after ``stop``)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("master.out", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """The Error/Fatal/Panic lines Dovecot has logged so far."""
        path = self.root / "dovecot.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [line for line in lines if _LOG_PROBLEM.search(line)]

    # --- users and accounts ------------------------------------------------

    def take_user(self) -> ImapUser:
        """A user no other test of this process has had."""
        if self._handed_out >= len(self.users):
            raise RuntimeError(f"all {len(self.users)} pool users are used up")
        self._handed_out += 1
        return self.users[self._handed_out - 1]

    def account(
        self, user: ImapUser, security: Security = "none", **fields: Any
    ) -> AccountConfig:
        """An account section pointing at this server as ``user``."""
        port = self.imaps_port if security == "ssl" else self.imap_port
        values: dict[str, Any] = {
            "name": "porong",
            "host": LOOPBACK,
            "port": port,
            "security": security,
            "ca_file": self.tls.ca_file,
            "timeout_seconds": 10.0,
            "username": user.address,
            "password_env": user.password_env,
        }
        return AccountConfig.model_validate({**values, **fields})

    # --- mailbox contents --------------------------------------------------

    @contextmanager
    def session(self, user: ImapUser) -> Iterator[IMAPClient]:
        """A logged-in helper connection over plain IMAP."""
        with IMAPClient(LOOPBACK, self.imap_port, ssl=False, timeout=10) as client:
            client.login(user.address, user.password)
            yield client

    def append(
        self,
        user: ImapUser,
        raw: bytes,
        folder: str = "INBOX",
        flags: Sequence[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """APPEND one message (creating ``folder`` if needed); its UID."""
        with self.session(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            reply = client.append(
                folder, raw, flags=tuple(flags), msg_time=internal_date
            )
        return _appended_uids(reply)[0]

    def seed(
        self, user: ImapUser, messages: Sequence[bytes], folder: str = "INBOX"
    ) -> list[int]:
        """MULTIAPPEND many messages, 100 per command; their UIDs in order."""
        uids: list[int] = []
        with self.session(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for start in range(0, len(messages), 100):
                _, lines = client.multiappend(folder, messages[start : start + 100])
                uids.extend(_appended_uids(lines[0]))
        return uids

    def folder_uids(self, user: ImapUser, folder: str = "INBOX") -> list[int]:
        """The UIDs in ``folder``, ascending."""
        with self.session(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search(["ALL"]))

    def flags(self, user: ImapUser, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags in ``folder``; ``\\Recent`` left out (it is per session)."""
        with self.session(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {
            uid: {flag.decode() for flag in data[b"FLAGS"]} - {"\\Recent"}
            for uid, data in fetched.items()
        }

    def deliver_lmtp(
        self, sender: str, recipients: Sequence[str], raw: bytes
    ) -> dict[str, tuple[int, bytes]]:
        """Deliver like an MTA over LMTP; the refused recipients."""
        with smtplib.LMTP(LOOPBACK, self.lmtp_port, timeout=10) as lmtp:
            return lmtp.sendmail(sender, list(recipients), raw)


def _appended_uids(reply: bytes) -> list[int]:
    # UIDPLUS (RFC 4315): "[APPENDUID <uidvalidity> <uid-set>]"
    found = re.search(rb"APPENDUID \d+ ([\d:,]+)", reply)
    if found is None:
        raise AssertionError(f"no APPENDUID in {reply!r}")
    uids: list[int] = []
    for part in found.group(1).decode().split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


def launch_dovecot(tls: TlsFiles, introspection_url: str) -> DovecotServer:
    """Start a Dovecot, picking new ports if another process took ours."""
    for _attempt in range(3):
        server = DovecotServer(tls, introspection_url)
        try:
            server.start()
        except RuntimeError:
            server.stop()
            if "Address already in use" not in server.log_tail():
                raise
            server.remove()
            continue
        return server
    raise RuntimeError("Dovecot: no free ports after 3 attempts")
