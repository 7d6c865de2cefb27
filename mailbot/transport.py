"""Handing finished messages to the mail system: the only module that speaks SMTP.

Reads the ``[smtp]`` settings and the password its ``password_env`` names, takes
the outbox's bytes and sends them unchanged (line ends made CRLF, as SMTP
requires), and returns the server's reply. Without an SMTP server the file
transport writes each message as an ``.eml`` file instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from mailbot.config import SmtpConfig, read_secret
from mailbot.errors import DeliveryError

log = logging.getLogger(__name__)

_SMTP_ERRORS = (smtplib.SMTPException, OSError)
_LINE_END = re.compile(rb"\r\n|\r|\n")


class Transport(Protocol):
    """Where the outbox hands a finished message.

    ``deliver`` returns the receiving server's reply text. It raises
    ``DeliveryError`` whose ``permanent`` says whether trying the same message
    again can never succeed (a 5xx answer to it) or may (4xx, a refused or lost
    connection, a failed login: troubles of the server, not of the message).
    """

    def deliver(self, envelope_from: str, recipients: Sequence[str], raw: bytes) -> str:
        """Send ``raw`` to ``recipients``; the server's reply."""
        ...

    def close(self) -> None:
        """Release the connection, if any."""
        ...


class SmtpTransport:
    """Delivers over one SMTP connection, kept open and renewed when dropped."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._password: SecretStr | None = None
        if config.username:
            self._password = read_secret(config.password_env, "smtp.password_env")
        self._connection: smtplib.SMTP | None = None

    def deliver(self, envelope_from: str, recipients: Sequence[str], raw: bytes) -> str:
        """Send one message; the reply to DATA, with any refused recipients."""
        if not recipients:
            raise DeliveryError("no recipients", permanent=True)
        connection = self._connected()

        try:
            options = _mail_options(connection, envelope_from, recipients, raw)
            return _transaction(connection, envelope_from, recipients, raw, options)
        except DeliveryError:
            # A refusal may leave the server's transaction open (some servers
            # keep the envelope after a refused DATA); without RSET the next
            # letter's MAIL would be answered "503 nested MAIL command".
            self._reset(connection)
            raise
        except smtplib.SMTPResponseException as exc:
            self.close()
            reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise DeliveryError(reply, permanent=exc.smtp_code >= 500) from exc
        except _SMTP_ERRORS as exc:
            # The server was there and hung up on this letter: an attempt of
            # the letter's. The next one connects afresh, and finds out
            # whether the server is down.
            self.close()
            raise DeliveryError(f"connection lost: {exc}", permanent=False) from exc

    def verify(self) -> None:
        """Connect, greet and log in as a delivery would, then hang up."""
        self._connected()
        self.close()

    def close(self) -> None:
        """QUIT, or just drop a connection that is already gone."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except _SMTP_ERRORS:
            connection.close()

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            code, _ = connection.rset()
        except _SMTP_ERRORS:
            code = 0
        if code != 250:
            self.close()

    def _connected(self) -> smtplib.SMTP:
        if self._connection is not None and _alive(self._connection):
            return self._connection

        self.close()
        config = self.config
        try:
            self._connection = self._open()
        except _SMTP_ERRORS as exc:
            raise DeliveryError(
                f"cannot use SMTP server {config.host}:{config.port}: {exc}",
                permanent=False,
                unreachable=True,
            ) from exc
        return self._connection

    def _open(self) -> smtplib.SMTP:
        config = self.config
        log.debug(
            "smtp: connecting to %s:%d (%s)", config.host, config.port, config.security
        )
        if config.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=config.timeout_seconds,
                context=self._tls_context(),
            )
        else:
            connection = smtplib.SMTP(
                config.host, config.port, timeout=config.timeout_seconds
            )

        try:
            self._greet(connection)
        except _SMTP_ERRORS:
            connection.close()
            raise
        return connection

    def _greet(self, connection: smtplib.SMTP) -> None:
        connection.ehlo()
        if self.config.security == "starttls":
            connection.starttls(context=self._tls_context())
            connection.ehlo()
        if self.config.username and self._password is not None:
            connection.login(self.config.username, self._password.get_secret_value())
            log.debug("smtp: logged in as %s", self.config.username)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.tls_verify:
            log.warning(
                "smtp: TLS certificate verification is off (tls_verify = false)"
            )
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _alive(connection: smtplib.SMTP) -> bool:
    try:
        return connection.noop()[0] == 250
    except _SMTP_ERRORS:
        return False


def _mail_options(
    connection: smtplib.SMTP, envelope_from: str, recipients: Sequence[str], raw: bytes
) -> list[str]:
    options: list[str] = []
    if not raw.isascii():
        options.append(_require(connection, "8bitmime", "BODY=8BITMIME"))

    addresses = [envelope_from, *recipients]
    # RFC 6531/6532: non-ASCII addresses or raw UTF-8 headers need SMTPUTF8.
    if not all(a.isascii() for a in addresses) or not _header_block(raw).isascii():
        options.append(_require(connection, "smtputf8", "SMTPUTF8"))
    return options


def _require(connection: smtplib.SMTP, extension: str, option: str) -> str:
    if not connection.has_extn(extension):
        raise DeliveryError(
            f"the SMTP server does not offer {extension.upper()}, which this "
            "message needs",
            permanent=True,
        )
    return option


def _transaction(
    connection: smtplib.SMTP,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    options: list[str],
) -> str:
    code, reply = connection.mail(envelope_from, options)
    if code != 250:
        # 503 is a complaint about the session's command order, not about the
        # letter: a fresh try on a reset session may well succeed.
        permanent = code >= 500 and code != 503
        raise DeliveryError(f"{code} {_text(reply)}", permanent=permanent)

    refused = _refused_recipients(connection, recipients)
    if len(refused) == len(recipients):
        permanent = all(code >= 500 for code, _ in refused.values())
        raise DeliveryError(_refusals(refused), permanent=permanent)

    code, reply = connection.data(_LINE_END.sub(b"\r\n", raw))
    if code != 250:
        raise DeliveryError(f"{code} {_text(reply)}", permanent=code >= 500)
    answer = f"{code} {_text(reply)}"
    return f"{answer}; {_refusals(refused)}" if refused else answer


def _refused_recipients(
    connection: smtplib.SMTP, recipients: Sequence[str]
) -> dict[str, tuple[int, bytes]]:
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = connection.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    return refused


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    parts = [
        f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in refused.items()
    ]
    return "refused " + ", ".join(parts)


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())


def _header_block(raw: bytes) -> bytes:
    return _LINE_END.sub(b"\n", raw).split(b"\n\n", 1)[0]


class FileTransport:
    """Writes each message to ``<directory>/<message id>.eml`` (no SMTP server)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def deliver(self, envelope_from: str, recipients: Sequence[str], raw: bytes) -> str:
        """Write ``raw`` unchanged, atomically; where it went."""
        path = self.directory / f"{_file_stem(raw)}.eml"
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as out:
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(path)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc}", permanent=False) from exc
        return f"written to {path}"

    def close(self) -> None:
        """Nothing to release."""


def _file_stem(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    message_id = str(headers.get("Message-ID") or "").strip().strip("<>")
    stem = re.sub(r"[^A-Za-z0-9.@+_-]", "_", message_id)[:150].lstrip(".")
    return stem or hashlib.sha256(raw).hexdigest()
