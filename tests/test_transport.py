"""Handing mail to SMTP (a real aiosmtpd sink) and to .eml files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from servers import LOOPBACK, free_ports
from smtpsink import SmtpSink

from mailbot.config import SmtpConfig
from mailbot.errors import DeliveryError
from mailbot.transport import FileTransport, SmtpTransport

OFFICE = "porong@sidoarjokab.go.id"
CITIZEN = "warga@example.net"
LOGIN = "porong@sidoarjokab.go.id"
PASSWORD = "Sandi-SMTP-Kantor-2026"

ACKNOWLEDGEMENT = (
    b"From: Layanan Pengaduan Kecamatan Porong <porong@sidoarjokab.go.id>\r\n"
    b"To: warga@example.net\r\n"
    b"Subject: [PRG-2026-000123-4] Pengaduan Anda telah diterima\r\n"
    b"Message-ID: <PRG-2026-000123-4.ack@porong.sidoarjokab.go.id>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    b"Terima kasih. Layanan ini tidak dipungut biaya.\r\n"
    b".\r\n"
    b"Salam.\r\n"
)


def smtp_config(sink: SmtpSink, **fields: Any) -> SmtpConfig:
    security = {"plain": "none", "starttls": "starttls", "ssl": "ssl"}[sink.mode]
    values: dict[str, Any] = {
        "host": LOOPBACK,
        "port": sink.port,
        "security": security,
        "ca_file": sink.tls.ca_file if sink.tls else None,
        "timeout_seconds": 5.0,
    }
    return SmtpConfig.model_validate({**values, **fields})


@pytest.fixture
def transports() -> Iterator[Callable[[SmtpConfig], SmtpTransport]]:
    """Make SMTP transports that are closed after the test."""
    made: list[SmtpTransport] = []

    def make(config: SmtpConfig) -> SmtpTransport:
        made.append(SmtpTransport(config))
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def test_plain_delivery_sends_the_exact_envelope_and_bytes(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    transport = transports(smtp_config(smtp_sink))

    reply = transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    assert reply == "250 2.0.0 Queued as sink-1"
    [received] = smtp_sink.wait_for(1)
    assert (received.mail_from, received.rcpt_tos) == (OFFICE, (CITIZEN,))
    assert received.raw == ACKNOWLEDGEMENT
    assert (received.mail_options, received.login) == ((), None)


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_and_auth_delivery(
    mode: str,
    smtp_sinks: Callable[..., SmtpSink],
    secret_env: Callable[[str], str],
    transports: Callable[[SmtpConfig], SmtpTransport],
) -> None:
    sink = smtp_sinks(mode, auth=(LOGIN, PASSWORD))
    config = smtp_config(sink, username=LOGIN, password_env=secret_env(PASSWORD))

    reply = transports(config).deliver(OFFICE, [CITIZEN, OFFICE], ACKNOWLEDGEMENT)

    assert reply == "250 2.0.0 Queued as sink-1"
    [received] = sink.wait_for(1)
    assert received.rcpt_tos == (CITIZEN, OFFICE)
    assert (received.raw, received.login) == (ACKNOWLEDGEMENT, LOGIN)


def test_starttls_with_the_default_trust_store_is_refused(
    smtp_sinks: Callable[..., SmtpSink],
    transports: Callable[[SmtpConfig], SmtpTransport],
) -> None:
    sink = smtp_sinks("starttls")
    transport = transports(smtp_config(sink, ca_file=None))

    with pytest.raises(DeliveryError) as refused:
        transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    assert refused.value.permanent is False
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.reply
    assert sink.messages == []


def test_wrong_smtp_password_is_temporary_and_not_shown(
    smtp_sinks: Callable[..., SmtpSink],
    secret_env: Callable[[str], str],
    transports: Callable[[SmtpConfig], SmtpTransport],
) -> None:
    sink = smtp_sinks("ssl", auth=(LOGIN, PASSWORD))
    wrong = "Sandi-Yang-Keliru"
    config = smtp_config(sink, username=LOGIN, password_env=secret_env(wrong))

    with pytest.raises(DeliveryError) as refused:
        transports(config).deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    assert refused.value.permanent is False
    assert refused.value.reply.startswith(
        f"cannot use SMTP server {LOOPBACK}:{sink.port}: (535, "
    )
    assert wrong not in refused.value.reply


def test_one_connection_serves_many_deliveries_and_is_renewed_when_lost(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    transport = transports(smtp_config(smtp_sink))

    transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)
    transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)
    with smtp_sink.stopped():
        pass
    third = transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    first, second, renewed = smtp_sink.wait_for(3)
    assert first.client_port == second.client_port != renewed.client_port
    assert third == "250 2.0.0 Queued as sink-3"


@pytest.mark.parametrize(("code", "permanent"), [(451, False), (550, True)])
def test_refused_data_raises_with_permanence_from_the_code(
    smtp_sink: SmtpSink,
    transports: Callable[[SmtpConfig], SmtpTransport],
    code: int,
    permanent: bool,
) -> None:
    transport = transports(smtp_config(smtp_sink))
    smtp_sink.fail_next(1, code)

    with pytest.raises(DeliveryError) as refused:
        transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)
    after = transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    status = f"{code // 100}.3.0"
    assert refused.value.reply == f"{code} {status} Refused by the test sink"
    assert refused.value.permanent is permanent
    assert after == "250 2.0.0 Queued as sink-1"


class _StickySmtp(SMTP):
    """A server that keeps the envelope after refusing DATA, as some do."""

    refusing = True
    keep_envelope = False

    def _set_post_data_state(self) -> None:
        if not self.keep_envelope:
            super()._set_post_data_state()
        self.keep_envelope = False


class _RefuseFirst:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(server, _StickySmtp)
        if server.refusing:
            server.refusing = False
            server.keep_envelope = True
            return "451 4.3.0 Try again later"
        self.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 OK"


class _StickyController(Controller):
    def factory(self) -> SMTP:
        return _StickySmtp(self.handler)


@pytest.fixture
def sticky_server() -> Iterator[tuple[int, _RefuseFirst]]:
    handler = _RefuseFirst()
    port = free_ports(1)[0]
    controller = _StickyController(handler, hostname=LOOPBACK, port=port)
    controller.start()
    yield port, handler
    controller.stop()


def test_a_refused_data_is_reset_before_the_next_letter(
    sticky_server: tuple[int, _RefuseFirst],
    transports: Callable[[SmtpConfig], SmtpTransport],
) -> None:
    port, handler = sticky_server
    config = SmtpConfig(host=LOOPBACK, port=port, security="none", timeout_seconds=5)
    transport = transports(config)

    with pytest.raises(DeliveryError) as refused:
        transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)
    after = transport.deliver(OFFICE, ["dua@example.net"], ACKNOWLEDGEMENT)

    assert (refused.value.reply, refused.value.permanent) == (
        "451 4.3.0 Try again later",
        False,
    )
    assert after == "250 OK"
    assert handler.envelopes == [(OFFICE, ["dua@example.net"])]


def test_stopped_server_is_a_temporary_failure(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    transport = transports(smtp_config(smtp_sink))

    with smtp_sink.stopped(), pytest.raises(DeliveryError) as refused:
        transport.deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    assert refused.value.permanent is False
    assert refused.value.reply == (
        f"cannot use SMTP server {LOOPBACK}:{smtp_sink.port}: "
        "[Errno 111] Connection refused"
    )


def test_recipients_refused_one_by_one_are_reported(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    smtp_sink.refuse("hilang@example.net")
    transport = transports(smtp_config(smtp_sink))

    reply = transport.deliver(OFFICE, ["hilang@example.net", CITIZEN], ACKNOWLEDGEMENT)

    assert reply == (
        "250 2.0.0 Queued as sink-1; "
        "refused hilang@example.net: 550 5.1.1 Mailbox unavailable"
    )
    assert smtp_sink.wait_for(1)[0].rcpt_tos == (CITIZEN,)


def test_all_recipients_refused_is_a_permanent_failure(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    smtp_sink.refuse("hilang@example.net")
    transport = transports(smtp_config(smtp_sink))

    with pytest.raises(DeliveryError) as refused:
        transport.deliver(OFFICE, ["hilang@example.net"], ACKNOWLEDGEMENT)

    assert refused.value.reply == (
        "refused hilang@example.net: 550 5.1.1 Mailbox unavailable"
    )
    assert refused.value.permanent is True
    assert smtp_sink.messages == []


def test_eight_bit_body_and_utf8_headers_ask_for_the_extensions(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    eight_bit = ACKNOWLEDGEMENT.replace(b"Salam.", "Salam hangat — Camat.".encode())
    utf8_header = ACKNOWLEDGEMENT.replace(
        b"Pengaduan Anda", "Aduan Bu Siti — kiriman ulang".encode()
    )
    transport = transports(smtp_config(smtp_sink))

    transport.deliver(OFFICE, [CITIZEN], eight_bit)
    transport.deliver(OFFICE, [CITIZEN], utf8_header)

    body, header = smtp_sink.wait_for(2)
    assert (body.raw, body.mail_options) == (eight_bit, ("BODY=8BITMIME",))
    assert header.raw == utf8_header
    assert header.mail_options == ("BODY=8BITMIME", "SMTPUTF8")


def test_bare_line_feeds_go_out_as_crlf(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    unix_style = ACKNOWLEDGEMENT.replace(b"\r\n", b"\n")

    transports(smtp_config(smtp_sink)).deliver(OFFICE, [CITIZEN], unix_style)

    assert smtp_sink.wait_for(1)[0].raw == ACKNOWLEDGEMENT


def test_no_recipients_is_a_permanent_failure(
    smtp_sink: SmtpSink, transports: Callable[[SmtpConfig], SmtpTransport]
) -> None:
    with pytest.raises(DeliveryError) as refused:
        transports(smtp_config(smtp_sink)).deliver(OFFICE, [], ACKNOWLEDGEMENT)

    assert (refused.value.reply, refused.value.permanent) == ("no recipients", True)


def test_file_transport_writes_the_exact_bytes_named_by_message_id(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"

    reply = FileTransport(outbox).deliver(OFFICE, [CITIZEN], ACKNOWLEDGEMENT)

    path = outbox / "PRG-2026-000123-4.ack@porong.sidoarjokab.go.id.eml"
    assert reply == f"written to {path}"
    assert path.read_bytes() == ACKNOWLEDGEMENT
    assert sorted(p.name for p in outbox.iterdir()) == [path.name]


def test_file_transport_names_a_message_without_id_by_its_hash(
    tmp_path: Path,
) -> None:
    raw = b"Subject: tanpa Message-ID\r\n\r\nIsi.\r\n"
    transport = FileTransport(tmp_path)

    first = transport.deliver(OFFICE, [CITIZEN], raw)
    again = transport.deliver(OFFICE, [CITIZEN], raw)

    path = tmp_path / f"{hashlib.sha256(raw).hexdigest()}.eml"
    assert first == again == f"written to {path}"
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [raw]


def test_file_transport_keeps_hostile_message_ids_inside_its_directory(
    tmp_path: Path,
) -> None:
    raw = b"Message-ID: <../../etc/passwd>\r\n\r\nx\r\n"

    reply = FileTransport(tmp_path).deliver(OFFICE, [CITIZEN], raw)

    assert reply == f"written to {tmp_path / '_.._etc_passwd.eml'}"
