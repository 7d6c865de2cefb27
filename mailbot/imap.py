"""Reading one IMAP account: the only module that speaks IMAP.

Reads the account's settings and its password (or an OAuth2 access token); on
the server it reads the folder's UIDVALIDITY and UIDNEXT, new UIDs and raw
messages (without setting \\Seen), and writes only the mark that a message was
handled: \\Seen, or a MOVE to the processed folder. Every failure of the server,
the network or TLS becomes ``MailboxError`` naming the account.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from imapclient import DELETED, SEEN, IMAPClient

from mailbot.config import AccountConfig, read_secret
from mailbot.errors import MailboxError
from mailbot.oauth import RefreshTokenSource, TokenSource

log = logging.getLogger(__name__)

# RFC 2177: clients should re-issue IDLE at least every 29 minutes.
IDLE_LIMIT_SECONDS = 25 * 60
_CHANGES = {b"EXISTS", b"EXPUNGE"}
# An IDLE wait that ends this long before its deadline with nothing said ended
# because the server closed the connection.
_EARLY = 0.05
_SILENT_LIMIT = 20


@dataclass(frozen=True)
class FolderState:
    """What SELECT tells about the watched folder."""

    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class FetchedMail:
    """One message as the server stores it; ``internal_date`` is aware UTC."""

    uid: int
    raw: bytes
    internal_date: datetime | None


class Mailbox:
    """One authenticated connection to one account; a context manager.

    For ``auth = "oauth2"`` pass a long-lived ``tokens`` source; without one a
    new ``RefreshTokenSource`` asks the token endpoint for every connection.
    """

    def __init__(
        self, account: AccountConfig, *, tokens: TokenSource | None = None
    ) -> None:
        self.account = account
        self._tokens = tokens
        self._client: IMAPClient | None = None
        self._processed_folder_ready = False

    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- connection -------------------------------------------------------

    def open(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        secret = self._credential()

        with self._failures("connect"):
            client = self._connect()
        try:
            with self._failures("log in"):
                self._login(client, secret)
        except MailboxError:
            _shut(client)
            raise
        self._client = client

    def close(self) -> None:
        """Log out; a connection that is already gone is simply dropped."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError) as exc:
            log.debug("account %s: logout failed: %s", self.account.name, exc)
            _shut(client)

    def _credential(self) -> str:
        # Fetched before connecting, so a missing secret leaves no socket open.
        account = self.account
        if account.auth == "oauth2":
            if self._tokens is None:
                self._tokens = RefreshTokenSource(account, clock=_utc_now)
            return self._tokens.access_token()
        key = f"accounts.{account.name}.password_env"
        return read_secret(account.password_env, key).get_secret_value()

    def _connect(self) -> IMAPClient:
        account = self.account
        context = None if account.security == "none" else self._tls_context()
        log.debug(
            "account %s: connecting to %s:%d (%s)",
            account.name,
            account.host,
            account.port,
            account.security,
        )
        client = IMAPClient(
            account.host,
            port=account.port,
            ssl=account.security == "ssl",
            ssl_context=context,
            timeout=account.timeout_seconds,
        )
        client.normalise_times = False

        if account.security == "starttls":
            try:
                client.starttls(context)
            except (imaplib.IMAP4.error, OSError):
                _shut(client)
                raise
        return client

    def _tls_context(self) -> ssl.SSLContext:
        account = self.account
        context = ssl.create_default_context(cafile=account.ca_file)
        if not account.tls_verify:
            log.warning(
                "account %s: TLS certificate verification is off (tls_verify = false)",
                account.name,
            )
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _login(self, client: IMAPClient, secret: str) -> None:
        account = self.account
        if account.auth == "oauth2":
            client.oauth2_login(account.username, secret)
        else:
            client.login(account.username, secret)
        log.debug("account %s: logged in as %s", account.name, account.username)

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        try:
            yield
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(
                f"account {self.account.name}: {action} failed: {_reason(exc)}"
            ) from exc

    def _connection(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"account {self.account.name}: not connected")
        return self._client

    # --- reading ------------------------------------------------------------

    def select(self) -> FolderState:
        """SELECT the account's folder; its UIDVALIDITY, UIDNEXT and size."""
        client = self._connection()
        folder = self.account.folder
        with self._failures(f"select {folder}"):
            reply = client.select_folder(folder)
            uidnext = reply.get(b"UIDNEXT")
            if uidnext is None:
                uidnext = client.folder_status(folder, [b"UIDNEXT"])[b"UIDNEXT"]
        return FolderState(
            int(reply[b"UIDVALIDITY"]), int(uidnext), int(reply[b"EXISTS"])
        )

    def status(self) -> FolderState:
        """STATUS of the account's folder, without selecting it.

        Far cheaper than SELECT on a large folder: an idle poll asks this first.
        """
        client = self._connection()
        folder = self.account.folder
        with self._failures(f"status {folder}"):
            reply = client.folder_status(
                folder, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"]
            )
        return FolderState(
            int(reply[b"UIDVALIDITY"]), int(reply[b"UIDNEXT"]), int(reply[b"MESSAGES"])
        )

    def new_uids(self, after_uid: int) -> list[int]:
        """UIDs above ``after_uid`` in the selected folder, ascending."""
        first = after_uid + 1
        with self._failures("search"):
            found = self._connection().search(["UID", f"{first}:*"])
        # "n:*" also matches the highest UID when nothing is newer (RFC 3501
        # 6.4.8: the range is unordered), so filter.
        return sorted(uid for uid in found if uid >= first)

    def unseen_uids(self) -> list[int]:
        """UIDs without \\Seen in the selected folder, ascending."""
        with self._failures("search"):
            found = self._connection().search(["UNSEEN"])
        return sorted(found)

    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        """Raw bytes and arrival time of these messages, one FETCH per batch.

        UIDs no longer on the server are left out; nothing is marked \\Seen.
        """
        client = self._connection()
        mails: list[FetchedMail] = []
        for batch in _batches(uids, self.account.batch_size):
            with self._failures("fetch"):
                reply = client.fetch(batch, ["BODY.PEEK[]", "INTERNALDATE"])
            mails.extend(
                _fetched(uid, reply[uid])
                for uid in sorted(reply)
                if b"BODY[]" in reply[uid]
            )
        return mails

    # --- writing ------------------------------------------------------------

    def mark_handled(self, uids: Sequence[int]) -> None:
        """Mark messages handled: \\Seen, or MOVE to the processed folder."""
        client = self._connection()
        target = self.account.processed_folder
        for batch in _batches(uids, self.account.batch_size):
            if target is None:
                with self._failures("mark seen"):
                    client.add_flags(batch, [SEEN], silent=True)
                continue
            with self._failures(f"move to {target}"):
                self._ensure_processed_folder(client, target)
                _move(client, batch, target)

    def _ensure_processed_folder(self, client: IMAPClient, folder: str) -> None:
        if self._processed_folder_ready:
            return
        if not client.folder_exists(folder):
            log.info("account %s: creating folder %s", self.account.name, folder)
            client.create_folder(folder)
        self._processed_folder_ready = True

    # --- waiting ------------------------------------------------------------

    def idle_wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for mail to arrive in or leave the folder.

        Uses IDLE when the server offers it (a wait is cut at 25 minutes, RFC
        2177), else sleeps and asks with NOOP. True when the folder changed.
        """
        client = self._connection()
        timeout = min(timeout, IDLE_LIMIT_SECONDS)
        with self._failures("idle"):
            if client.has_capability("IDLE"):
                return _idle(client, timeout)
            time.sleep(timeout)
            _, responses = client.noop()
            return _changed(responses)

    def interrupt(self) -> None:
        """Cut the connection from another thread: a wait in IDLE ends at once."""
        client = self._client
        if client is None:
            return
        # Shut the socket, not the client: its files stay open, so the waiting
        # thread reads EOF (MailboxError) rather than a closed file.
        with contextlib.suppress(OSError):
            client.socket().shutdown(socket.SHUT_RDWR)

    def can_idle(self) -> bool:
        """Whether the server offers IDLE (RFC 2177)."""
        with self._failures("capability"):
            return bool(self._connection().has_capability("IDLE"))

    def noop(self) -> None:
        """NOOP: keeps the connection alive and checks that it still is."""
        with self._failures("noop"):
            self._connection().noop()


def _reason(exc: BaseException) -> str:
    # imaplib passes the server's answer as bytes, and imapclient's LoginError
    # wraps the repr of those bytes: show the server's words either way.
    if len(exc.args) == 1 and isinstance(exc.args[0], bytes):
        return exc.args[0].decode("utf-8", "replace")
    text = str(exc) or type(exc).__name__
    quoted = re.fullmatch(r"b'(.*)'", text)
    return quoted.group(1) if quoted else text


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _batches(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield list(uids[start : start + size])


def _fetched(uid: int, data: dict[bytes, Any]) -> FetchedMail:
    arrived = data.get(b"INTERNALDATE")
    if isinstance(arrived, datetime):
        arrived = (
            arrived.astimezone(UTC) if arrived.tzinfo else arrived.replace(tzinfo=UTC)
        )
    else:
        arrived = None
    return FetchedMail(uid, bytes(data[b"BODY[]"]), arrived)


def _move(client: IMAPClient, uids: list[int], folder: str) -> None:
    if client.has_capability("MOVE"):
        client.move(uids, folder)
        return

    # No MOVE (RFC 6851): copy, then flag and expunge exactly these UIDs.
    client.copy(uids, folder)
    client.add_flags(uids, [DELETED], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)


def _idle(client: IMAPClient, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    changed = False
    silent = 0
    client.idle()
    while not changed and (left := deadline - time.monotonic()) > 0:
        responses = client.idle_check(timeout=left)
        # idle_check swallows EOF and returns nothing at once, again and again:
        # a dropped connection would spin here until the deadline. (A single
        # early empty answer can also be half a TLS record; that one passes.)
        early = not responses and deadline - time.monotonic() > _EARLY
        silent = silent + 1 if early else 0
        if silent >= _SILENT_LIMIT:
            raise OSError("connection closed during IDLE")
        changed = _changed(responses)

    _, responses = client.idle_done()
    return changed or _changed(responses)


def _changed(responses: Sequence[tuple[Any, ...]]) -> bool:
    return any(len(item) >= 2 and item[1] in _CHANGES for item in responses)


def _shut(client: IMAPClient) -> None:
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        client.shutdown()
