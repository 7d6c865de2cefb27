"""``mailbot run``: one instance per database, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from clirun import SIGNING_KEY, mailbot, write_config
from servers import wait_until


def start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("mailbot")), "--config", str(config)]
    env = {**os.environ, "MAILBOT_TEST_SIGNING_KEY": SIGNING_KEY}
    with open(log, "wb") as sink:
        return subprocess.Popen(
            [*command, "run"], stdout=sink, stderr=subprocess.STDOUT, env=env
        )


def test_a_second_run_is_refused_and_sigterm_stops_the_first(tmp_path: Path) -> None:
    camat = '[[staff]]\nemail = "camat@x.go.id"\nname = "Camat"\nrole = "camat"\n'
    config = write_config(
        tmp_path / "mailbot.toml", data_dir=tmp_path / "storage", extra=camat
    )
    log = tmp_path / "run.log"
    first = start_run(config, log)
    try:
        wait_until(
            lambda: "running 5 jobs" in log.read_text("utf-8"), 30, "run to start"
        )

        second = mailbot(config, "run", check=False)

        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=15)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    assert second.returncode == 2
    assert second.stderr == (
        "configuration error: storage.data_dir: another 'mailbot run' already "
        f"works on {tmp_path / 'storage'}\n"
    )
    assert code == 0
    output = log.read_text("utf-8")
    assert "running 5 jobs: poll, send, sla, health, digest" in output
    assert "signal 15 received: stopping after the job in hand" in output
    assert output.rstrip().endswith("mailbot.scheduler: stopped")
