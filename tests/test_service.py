"""``mailbot run``: one instance per database, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy.exc
from clirun import SIGNING_KEY, mailbot, write_config
from digest_scenario import build
from dovecot import DovecotServer, ImapUser
from seeding import CHAIN_STAFF_TOML, add_ticket, make_settings
from servers import LOOPBACK, wait_until
from smtpsink import SmtpSink

from mailbot.app import App
from mailbot.config import SmtpConfig
from mailbot.errors import OperationalError
from mailbot.inbound import Origin
from mailbot.scheduler import StopFlag, guarded, run_forever
from mailbot.service import Service

DATA = Path(__file__).parent / "data"


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

    assert second.returncode == 1
    assert second.stderr == (
        f"error: another 'mailbot run' already works on {tmp_path / 'storage'} "
        f"(its lock: {tmp_path / 'storage' / 'mailbot-run.lock'})\n"
    )
    assert code == 0
    output = log.read_text("utf-8")
    assert "running 5 jobs: poll, send, sla, health, digest" in output
    assert "signal 15 received: stopping after the job in hand" in output
    assert output.rstrip().endswith("mailbot.scheduler: stopped")


def test_a_poll_that_brings_a_complaint_sends_the_acknowledgement_at_once(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(tmp_path).model_copy(
        update={
            "accounts": (dovecot.account(imap_user, address="porong@x.go.id"),),
            "smtp": SmtpConfig(host=LOOPBACK, port=smtp_sink.port, security="none"),
        }
    )
    app = App.build(settings)
    service = Service(app, app.transport())
    dovecot.append(imap_user, (DATA / "intake-complaint-street-light.eml").read_bytes())

    try:
        service.poll()
    finally:
        service.transport.close()

    assert sorted(m.rcpt_tos[0] for m in smtp_sink.messages) == [
        "budi.santoso@example.com",
        "ekbang.porong@example.go.id",
        "ekbang.staf@porong.example.go.id",
    ]


@pytest.mark.parametrize(
    ("stopping", "slice_seconds", "sent"),
    [(True, 5.0, 1), (False, 0.0, 1), (False, 5.0, 3)],
)
def test_a_send_run_gives_way_to_stopping_and_after_its_slice_to_new_mail(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stopping: bool,
    slice_seconds: float,
    sent: int,
) -> None:
    # Trial 33: new mail waited 6.5 minutes behind a slow queue. Giving way to
    # every new mail at once starved the letters in a flood (bench_workers).
    monkeypatch.setattr("mailbot.service.SEND_SLICE_SECONDS", slice_seconds)
    app = App.build(make_settings(tmp_path))
    app.intake.receive(
        (DATA / "intake-complaint-street-light.eml").read_bytes(),
        Origin("import", "", "test"),
    )
    service = Service(
        app, app.transport(), stopping=lambda: stopping, woken=lambda: True
    )

    report = service.send()

    assert report.sent == sent


def test_the_poll_a_send_run_gave_way_to_sends_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bench_workers: woken by other workers' flags, sends gave way to polls
    # that brought nothing, and the rest waited for the send job's turn.
    monkeypatch.setattr("mailbot.service.SEND_SLICE_SECONDS", 0.0)
    app = App.build(make_settings(tmp_path))
    app.intake.receive(
        (DATA / "intake-complaint-street-light.eml").read_bytes(),
        Origin("import", "", "test"),
    )
    woken = [True]
    service = Service(app, app.transport(), woken=lambda: woken[0])

    first = service.send()
    woken[0] = False
    service.poll()

    assert first.sent == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_digest_send_delivers_once_per_day(tmp_path: Path) -> None:
    build(tmp_path / "data")
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n{CHAIN_STAFF_TOML}',
        encoding="utf-8",
    )

    first = mailbot(config, "digest", "--date", "2026-12-02", "--send")
    again = mailbot(config, "digest", "--date", "2026-12-02", "--send", check=False)

    assert first.stdout == "digest of 2026-12-02: 1 queued, 1 sent\n"
    assert again.returncode == 1
    assert again.stderr == (
        "error: digest of 2026-12-02: already queued or no recipients\n"
    )
    sent = list((tmp_path / "data" / "outbox").glob("*.eml"))
    assert len(sent) == 1
    assert "To: camat@porong.example.go.id" in sent[0].read_text("utf-8")


def test_a_failing_job_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    turns: list[int] = []

    def failing() -> None:
        turns.append(len(turns))
        raise OperationalError("the database is locked")

    job = guarded("sla", failing)
    job()
    job()

    assert turns == [0, 1]
    assert [r.getMessage() for r in caplog.records] == [
        "job sla failed; it runs again on its next turn"
    ] * 2


def test_a_database_that_is_down_is_one_line_a_turn_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Trial 33: a 20-second outage wrote 170 tracebacks over three workers.
    def failing() -> None:
        raise sqlalchemy.exc.OperationalError(
            "SELECT 1", {}, sqlite3.OperationalError("database is locked")
        )

    guarded("send", failing)()

    assert [(r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "job send failed: storage: OperationalError: database is locked; it "
            "runs again on its next turn",
            None,
        )
    ]


def test_new_mail_wakes_the_poll_and_leaves_the_other_jobs_to_their_turn() -> None:
    runs: list[str] = []
    wake, stop = threading.Event(), StopFlag()

    def poll() -> None:
        runs.append("poll")
        if runs.count("poll") == 3:
            stop.stopped = True

    def sla() -> None:
        runs.append("sla")

    def new_mail() -> None:
        for _ in range(2):
            time.sleep(0.3)
            wake.set()

    handlers = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT)}
    threading.Thread(target=new_mail, daemon=True).start()
    try:
        run_forever([("poll", 3600, poll), ("sla", 3600, sla)], stop, wake=wake)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)

    # Each once at start, then the poll alone for each wake.
    assert runs == ["poll", "sla", "poll", "poll"]


def test_sweep_from_the_command_line_takes_each_step_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = App.build(settings)
    now = datetime.now(UTC)
    with app.sessions.begin() as session:
        add_ticket(session, settings, now - timedelta(hours=19))
        add_ticket(session, settings, now - timedelta(hours=25))
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n{CHAIN_STAFF_TOML}',
        encoding="utf-8",
    )

    first = mailbot(config, "sweep").stdout
    again = mailbot(config, "sweep").stdout

    assert (first, again) == (
        "reminded 1, escalated 1\n",
        "reminded 0, escalated 0\n",
    )
