"""An aiosmtpd sink for the tests, on 127.0.0.1: plain, STARTTLS or SSL, with AUTH."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from servers import LOOPBACK, Restartable, TlsFiles, free_ports, wait_until

# aiosmtpd warns about its own deprecated attribute on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)


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
        if address in self.sink.dropped:
            # A server that hangs up mid-transaction, as some do on a letter
            # they choke on.
            server.transport.close()
            return "421 4.3.0 Closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return self.sink.receive(session, envelope)


class SmtpSink(Restartable):
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
        self.dropped: set[str] = set()
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
