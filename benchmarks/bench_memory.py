"""Memory: intake of one message carrying a 25 MB attachment.

Peak RSS growth of the intake of that one message, after a warm-up message,
reported as a multiple of the raw message's size. The message is written to a
file piece by piece and read back whole, so that building it does not raise the
peak above "the raw bytes in memory" before the measurement starts.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import sys

import common
import mailparser

from mailbot.app import App
from mailbot.config import load_settings
from mailbot.inbound import Origin

ATTACHMENT_BYTES = 25 * 1024 * 1024


def head(n: int) -> bytes:
    return (
        "From: Warga <warga@example.com>\r\nTo: pengaduan@porong.example.go.id\r\n"
        f"Subject: Foto jalan berlubang {n}\r\nMessage-ID: <memory-{n}@example.com>\r\n"
        "Date: Mon, 05 Jan 2026 09:00:00 +0700\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Jalan berlubang di depan balai desa, foto terlampir.\r\n--b\r\n"
        'Content-Type: image/jpeg; name="jalan.jpg"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="jalan.jpg"\r\n\r\n'
    ).encode()


def base64_lines(attachment: bytes) -> bytes:
    return base64.encodebytes(attachment).replace(b"\n", b"\r\n")


def message(attachment: bytes, n: int) -> bytes:
    return head(n) + base64_lines(attachment) + b"--b--\r\n"


def big_message(n: int) -> bytes:
    path = common.WORK / "memory-message.eml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(head(n))
        # 57 bytes make one 76-character base64 line: chunks end on a line.
        chunk = 57 * 16 * 1024
        for _ in range(ATTACHMENT_BYTES // chunk):
            stream.write(base64_lines(os.urandom(chunk)))
        stream.write(base64_lines(os.urandom(ATTACHMENT_BYTES % chunk)))
        stream.write(b"--b--\r\n")
    raw = path.read_bytes()
    path.unlink()
    return raw


def intake_growth(raw: bytes) -> int:
    root = common.WORK / "memory"
    shutil.rmtree(root, ignore_errors=True)
    config = common.write_config(
        root / "mailbot.toml",
        root / "storage",
        "[intake]\nmax_message_bytes = 67108864\nmax_attachment_bytes = 67108864\n",
    )
    app = App.build(load_settings(config))
    app.intake.receive(message(os.urandom(10_000), 0), Origin("bench", "", "warm-up"))

    before = common.peak_rss_bytes()
    result = app.intake.receive(raw, Origin("bench", "", "big"))
    assert result.outcome == "ticket", result
    return common.peak_rss_bytes() - before


def parse_growth(raw: bytes) -> int:
    mailparser.parse_from_bytes(message(os.urandom(10_000), 0))

    before = common.peak_rss_bytes()
    mailparser.parse_from_bytes(raw)
    return common.peak_rss_bytes() - before


def child(step: str) -> None:
    raw = big_message(1)
    growth = intake_growth(raw) if step == "intake" else parse_growth(raw)
    print(len(raw), growth)


def measure(step: str) -> tuple[int, int]:
    # Each step in a fresh process: peak RSS only ever grows.
    done = subprocess.run(
        [sys.executable, __file__, step], check=True, capture_output=True, text=True
    )
    size, growth = done.stdout.split()
    return int(size), int(growth)


def main() -> None:
    logging.disable(logging.WARNING)
    if len(sys.argv) > 1:
        child(sys.argv[1])
        return
    common.heading("memory: one message with a 25 MB attachment")
    size, parse = measure("parse")
    _, intake = measure("intake")
    common.figure("raw message size", size / 1e6, "MB")
    common.figure("peak RSS growth: mail-parser alone", parse / 1e6, "MB")
    common.figure("peak RSS growth: mailbot intake", intake / 1e6, "MB")
    common.ratio("intake growth / message size", intake / size, "< 4")
    common.ratio("mail-parser alone growth / message size", parse / size)


if __name__ == "__main__":
    main()
