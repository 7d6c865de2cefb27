"""Real mail servers for the tests, all on 127.0.0.1: Dovecot (IMAP, IMAPS, LMTP),
an aiosmtpd sink and a local OAuth2 token and introspection endpoint.

The settings and their traps are explained in the team notes on test mail servers;
each server here can be stopped and started again on the same ports.
"""

from __future__ import annotations

import ctypes
import grp
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

from mailbot.config import AccountConfig, Security

LOOPBACK = "127.0.0.1"
DOVECOT = "/usr/sbin/dovecot"
MAIL_DOMAIN = "porong.test"

# aiosmtpd warns about its own deprecated attribute on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

_taken_ports: set[int] = set()


def free_ports(count: int) -> list[int]:
    """Ports free right now, never handed out before in this process."""
    # Sockets are held open together: closing one before binding the next
    # lets the kernel return the same port twice.
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            held.append(sock)
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
            if port not in _taken_ports:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()

    _taken_ports.update(ports)
    return ports


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll ``condition()`` every 10 ms until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


# --- TLS ------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the test certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)


def make_tls(directory: Path) -> TlsFiles:
    """Write a fresh CA and server certificate into ``directory``."""
    ca = trustme.CA()
    leaf = ca.issue_cert(LOOPBACK, "localhost")
    files = TlsFiles(
        directory / "ca.pem", directory / "server.pem", directory / "server.key"
    )

    ca.cert_pem.write_to_path(str(files.ca_file))
    leaf.private_key_pem.write_to_path(str(files.key_file))
    with files.cert_file.open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())
    return files


# --- OAuth2 ---------------------------------------------------------------


@dataclass
class _Grant:
    email: str
    expires_in: int
    revoked: bool = False


@dataclass
class _OAuthState:
    client_id: str
    client_secret: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    grants: dict[str, _Grant] = field(default_factory=dict)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)
    token_requests: int = 0
    introspections: int = 0


class _OAuthHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode("ascii"))
        fields = {key: values[0] for key, values in form.items()}
        state = cast(Any, self.server).state

        if self.path == "/token":
            status, body = _token_reply(state, fields)
        elif self.path == "/introspect":
            status, body = 200, _introspection_reply(state, fields.get("token", ""))
        else:
            status, body = 404, {"error": "not_found"}

        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


def _token_reply(state: _OAuthState, fields: dict[str, str]) -> tuple[int, object]:
    with state.lock:
        state.token_requests += 1
        if fields.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        # A public client (no secret) is accepted, as Google does for some apps.
        secret = fields.get("client_secret", state.client_secret)
        if fields.get("client_id") != state.client_id or secret != state.client_secret:
            return 401, {"error": "invalid_client"}
        grant = state.grants.get(fields.get("refresh_token", ""))
        if grant is None or grant.revoked:
            return 400, {"error": "invalid_grant"}

        token = "at-" + secrets.token_urlsafe(24)
        state.access[token] = (fields["refresh_token"], time.time() + grant.expires_in)
    reply = {"access_token": token, "expires_in": grant.expires_in}
    return 200, {**reply, "token_type": "Bearer"}


def _introspection_reply(state: _OAuthState, token: str) -> object:
    with state.lock:
        state.introspections += 1
        refresh, expires_at = state.access.get(token, ("", 0.0))
        grant = state.grants.get(refresh)
        if grant is None or grant.revoked or time.time() >= expires_at:
            return {"active": False}
        return {"active": True, "email": grant.email}


class OAuthServer:
    """A Google-like token endpoint and Dovecot's introspection endpoint."""

    client_id = "mailbot-test.apps.example"

    def __init__(self) -> None:
        self._state = _OAuthState(self.client_id, "cs-" + secrets.token_urlsafe(16))
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), _OAuthHandler)
        self._httpd.daemon_threads = True
        cast(Any, self._httpd).state = self._state
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def client_secret(self) -> str:
        return self._state.client_secret

    @property
    def token_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/introspect"

    @property
    def token_requests(self) -> int:
        """How many requests the token endpoint has answered so far."""
        with self._state.lock:
            return self._state.token_requests

    @property
    def introspections(self) -> int:
        with self._state.lock:
            return self._state.introspections

    def issue_refresh_token(self, email: str, expires_in: int = 3600) -> str:
        """A new refresh token for ``email``; its access tokens live ``expires_in``."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._state.lock:
            self._state.grants[token] = _Grant(email, expires_in)
        return token

    def revoke(self, refresh_token: str) -> None:
        """Refuse this refresh token and every access token it produced."""
        with self._state.lock:
            self._state.grants[refresh_token].revoked = True

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


# --- Dovecot --------------------------------------------------------------

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


class DovecotServer:
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

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """An outage: Dovecot is down inside the block and back up after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

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


# --- SMTP -----------------------------------------------------------------

SinkMode = Literal["plain", "starttls", "ssl"]


@dataclass(frozen=True)
class ReceivedMail:
    """One envelope as the sink received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    mail_options: tuple[str, ...]
    login: str | None
    client_port: int


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.sink.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return self.sink.receive(session, envelope)


class SmtpSink:
    """An aiosmtpd server that keeps what it receives, or fails on request."""

    def __init__(
        self,
        mode: SinkMode = "plain",
        tls: TlsFiles | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.mode = mode
        self.tls = tls
        self.auth = auth
        self.port = free_ports(1)[0]
        self.refused: set[str] = set()
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._failures: list[int] = []
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def fail_next(self, count: int, code: int = 451) -> None:
        """Answer the next ``count`` DATA commands with ``code`` (451 or 550)."""
        with self._lock:
            self._failures.extend([code] * count)

    def refuse(self, *addresses: str) -> None:
        """Answer RCPT TO for these addresses with 550."""
        self.refused.update(addresses)

    def receive(self, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._failures:
                code = self._failures.pop(0)
                return f"{code} {code // 100}.3.0 Refused by the test sink"
            login = session.auth_data.login.decode() if session.auth_data else None
            self._received.append(
                ReceivedMail(
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    tuple(envelope.mail_options),
                    login,
                    int(cast(Any, session.peer)[1]),
                )
            )
            return f"250 2.0.0 Queued as sink-{len(self._received)}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until ``count`` messages have arrived; all messages."""
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} messages")
        return self.messages

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert self.auth is not None
        login, password = self.auth
        success = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == login.encode()
            and auth_data.password == password.encode()
        )
        # auth_data must come back, or session.auth_data stays None.
        return AuthResult(success=success, handled=False, auth_data=auth_data)

    def _controller_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"server_hostname": "sink.test"}
        if self.auth is not None:
            options["authenticator"] = self._authenticate
        # aiosmtpd does not count implicit TLS as TLS: AUTH must be allowed
        # "in the clear" there, and on the plain port for plain-mode tests.
        options["auth_require_tls"] = self.mode == "starttls"
        if self.mode == "starttls":
            assert self.tls is not None
            options["tls_context"] = self.tls.server_context()
            options["require_starttls"] = True
        if self.mode == "ssl":
            assert self.tls is not None
            options["ssl_context"] = self.tls.server_context()
        return options

    def start(self) -> None:
        """Listen on this sink's port (a new controller each time)."""
        self._controller = Controller(
            _SinkHandler(self),
            hostname=LOOPBACK,
            port=self.port,
            **self._controller_options(),
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """An outage: the port refuses connections inside the block."""
        self.stop()
        try:
            yield
        finally:
            self.start()
