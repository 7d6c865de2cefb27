"""Running the real ``mailbot`` command line from tests, and writing its config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dovecot import DovecotServer, ImapUser
from servers import LOOPBACK
from smtpsink import SmtpSink

SIGNING_KEY = "test-signing-key-0123456789abcdef"

STAFF_TOML = """
[[staff]]
email = "operator@porong.example.go.id"
name = "Operator CS"
role = "operator"

[[staff]]
email = "ekbang.staf@porong.example.go.id"
name = "Staf Ekbang"
role = "unit"
unit = "ekbang"
"""


@dataclass(frozen=True)
class Inbox:
    name: str
    user: ImapUser
    address: str


def account_toml(dovecot: DovecotServer, inbox: Inbox, **extra: Any) -> str:
    """One [[accounts]] table pointing at the test Dovecot."""
    lines = [
        "[[accounts]]",
        f'name = "{inbox.name}"',
        f'host = "{LOOPBACK}"',
        f"port = {dovecot.imap_port}",
        'security = "none"',
        f'username = "{inbox.user.address}"',
        f'address = "{inbox.address}"',
        f'password_env = "{inbox.user.password_env}"',
        "timeout_seconds = 10.0",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def write_config(
    path: Path,
    *,
    data_dir: Path,
    accounts: Sequence[str] = (),
    smtp: SmtpSink | None = None,
    extra: str = "",
    database_url: str | None = None,
    smtp_settings: str = "max_attempts = 3\nretry_base_seconds = 1.0\n",
) -> Path:
    """A complete mailbot.toml for a test, with the Porong default units."""
    text = (
        "[office]\n"
        'signing_key_env = "MAILBOT_TEST_SIGNING_KEY"\n'
        "[storage]\n"
        f'data_dir = "{data_dir}"\n'
    )
    if database_url is not None:
        text += f'database_url = "{database_url}"\n'
    if smtp is not None:
        text += (
            "[smtp]\n"
            f'host = "{LOOPBACK}"\nport = {smtp.port}\nsecurity = "none"\n'
            'from_address = "porong@sidoarjokab.go.id"\n'
            f"{smtp_settings}"
        )
    text += "".join(accounts) + STAFF_TOML + extra
    path.write_text(text, encoding="utf-8")
    return path


def mailbot(
    config: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``mailbot --config CONFIG ARGS`` as a user would."""
    command = [str(Path(sys.executable).with_name("mailbot")), "--config", str(config)]
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"mailbot {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
        )
    return done


def tickets_json(config: Path) -> list[dict[str, Any]]:
    """``mailbot tickets list --json``, parsed."""
    result: list[dict[str, Any]] = json.loads(
        mailbot(config, "tickets", "list", "--json").stdout
    )
    return result
