"""Crash driver: runs poll, import or send in forked children killed at step N.

``python crashdriver.py CONFIG COMMAND MODE [PATHS...]`` imports mailbot once,
then for N = 1, 2, 3, ... forks a child that builds the app from CONFIG, wraps
the IMAP mailbox, the intake or the SMTP transport through the app's own
factories, and SIGKILLs itself when it reaches its N-th step (before and after
each wrapped call). It stops when a child finishes without reaching its step.

MODE ``chain``: each child starts from whatever the dead one left; prints the
step of every kill. MODE ``each``: every kill starts from the same saved state
and is followed by a restart that runs to the end; prints, per kill point, what
the database then holds. The product code knows nothing of this.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailbot.app import App
from mailbot.config import StorageConfig, load_settings
from mailbot.importing import read_messages
from mailbot.inbound import Origin
from mailbot.intake import transactions
from mailbot.models import InboundMail, OutboxItem, Ticket
from mailbot.outbox import deliver_due

MAX_CHILDREN = 200


class Steps:
    """Counts steps; at step ``kill_at`` the process dies on the spot."""

    def __init__(self, kill_at: int, report: int) -> None:
        self.kill_at = kill_at
        self.report = report
        self.count = 0

    def step(self, name: str) -> None:
        self.count += 1
        if self.count == self.kill_at:
            os.write(self.report, name.encode())
            os.kill(os.getpid(), signal.SIGKILL)

    def around(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.step(f"{name}:before")
            result = call(*args, **kwargs)
            self.step(f"{name}:after")
            return result

        return wrapped


class DyingMailbox:
    """The real mailbox, with a step before and after each server command."""

    def __init__(self, box: Any, steps: Steps) -> None:
        self.box = box
        self.steps = steps

    def __enter__(self) -> DyingMailbox:
        self.box.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.box.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return self.steps.around(name, getattr(self.box, name))


def run(config: Path, command: str, paths: list[str], steps: Steps) -> None:
    app = App.build(load_settings(config))
    intake = app.intake
    intake.receive_batch = steps.around("receive_batch", intake.receive_batch)
    if command == "poll":
        real_open = app.open_mailbox
        app.open_mailbox = lambda account: DyingMailbox(real_open(account), steps)
        app.poller().poll_all(app.settings.accounts)
    elif command == "import":
        # Batches of two, as `mailbot import` makes them (of 100 there).
        found = read_messages([Path(p) for p in paths])
        for batch in transactions(found, lambda f: len(f.raw or b""), messages=2):
            intake.receive_batch(
                [(item.raw, Origin("import", "", item.source)) for item in batch]
            )
    else:
        transport = app.transport()
        transport.deliver = steps.around("deliver", transport.deliver)
        assert app.settings.smtp is not None
        deliver_due(app.sessions, transport, app.settings.smtp, app.clock)
        transport.close()


def child(
    config: Path, command: str, paths: list[str], kill_at: int
) -> tuple[int, str]:
    """Fork one child; its wait status and what it wrote (the step it died at)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 1
        try:
            steps = Steps(kill_at, write_end)
            run(config, command, paths, steps)
            if kill_at == 0:
                os.write(write_end, json.dumps(summary(config)).encode())
            code = 0
        except BaseException:  # noqa: BLE001 - a forked child must never return
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        written = pipe.read().decode()
    return status, written


def summary(config: Path) -> dict[str, Any]:
    """What the database holds after a run: the figures a test compares."""
    app = App.build(load_settings(config))
    with app.sessions() as session:
        tickets = session.scalars(select(Ticket)).all()
        statuses = session.scalars(select(InboundMail.status)).all()
        outbox = session.scalars(select(OutboxItem.status)).all()
        return {
            "complainants": sorted(t.complainant_email for t in tickets),
            "messages": sorted(len(t.messages) for t in tickets),
            "inbound": dict(sorted(Counter(map(str, statuses)).items())),
            "outbox": dict(sorted(Counter(map(str, outbox)).items())),
        }


def killed(status: int) -> bool:
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return False
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return True
    raise SystemExit(f"a child failed with wait status {status}")


def chain(config: Path, command: str, paths: list[str]) -> list[str]:
    """Kill the 1st run at step 1, the 2nd at step 2, ... each on what is left."""
    kills: list[str] = []
    for kill_at in range(1, MAX_CHILDREN):
        status, died_at = child(config, command, paths, kill_at)
        if not killed(status):
            break
        kills.append(died_at)
    return kills


def each(config: Path, command: str, paths: list[str]) -> list[dict[str, Any]]:
    """From the same starting state, kill at step N, restart, and summarise."""
    data_dir = load_settings(config).storage.data_dir
    pristine = data_dir.with_name(data_dir.name + ".pristine")
    shutil.copytree(data_dir, pristine)
    points: list[dict[str, Any]] = []
    for kill_at in range(1, MAX_CHILDREN):
        shutil.rmtree(data_dir)
        shutil.copytree(pristine, data_dir)
        status, died_at = child(config, command, paths, kill_at)
        if not killed(status):
            break
        status, written = child(config, command, paths, 0)
        assert not killed(status)
        points.append({"point": died_at, **json.loads(written)})
    return points


def warm_up(config: Path) -> None:
    """Build an app once over a scratch database, so children start warm."""
    settings = load_settings(config)
    with tempfile.TemporaryDirectory() as scratch:
        storage = StorageConfig(data_dir=Path(scratch))
        App.build(settings.model_copy(update={"storage": storage}))


def main() -> None:
    config, command, mode, *paths = sys.argv[1:]
    warm_up(Path(config))
    run_mode = chain if mode == "chain" else each
    print(json.dumps(run_mode(Path(config), command, paths)))


if __name__ == "__main__":
    main()
