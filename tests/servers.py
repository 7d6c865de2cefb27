"""What the tests' real mail servers share: loopback ports, waiting, TLS files.

The servers themselves: ``dovecot`` (IMAP), ``smtpsink`` (SMTP) and
``oauthserver`` (the OAuth2 token endpoint).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

LOOPBACK = "127.0.0.1"
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


class Restartable:
    """A test server that stops and starts again on the same ports."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """An outage: the server is down inside the block and back up after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()
