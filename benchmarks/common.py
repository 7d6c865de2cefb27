"""Shared helpers of the benchmarks: corpora, the test servers, timing, reports.

The benchmarks reuse the real test servers from ``tests/`` (imported by path,
not copied) and generate their corpora with the shared generator at
``../shared/bench/make_corpus.py`` relative to the repository.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
MAKE_CORPUS = REPO.parent / "shared" / "bench" / "make_corpus.py"
WORK = Path(os.environ.get("MAILBOT_BENCH_DIR", "/tmp/mailbot-bench"))
SIGNING_KEY = "bench-signing-key-0123456789abcdef"
os.environ.setdefault("MAILBOT_BENCH_SIGNING_KEY", SIGNING_KEY)

sys.path.insert(0, str(TESTS))

# The test servers, reused by path from tests/.
import clirun  # noqa: E402
import dovecot  # noqa: E402
import oauthserver  # noqa: E402
import scratchdb  # noqa: E402
import servers  # noqa: E402


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    try:
        with scratchdb.scratch_database(name) as url:
            yield url
    except scratchdb.PostgresMissingError as exc:
        raise SystemExit(f"benchmarks: {exc}") from exc


def need_corpus_tool() -> Path:
    """The corpus generator, or a clear message saying where it should be."""
    if not MAKE_CORPUS.is_file():
        raise SystemExit(
            f"benchmarks: the corpus generator is missing: expected {MAKE_CORPUS} "
            "(the shared folder next to the repository, shared/bench/make_corpus.py)"
        )
    return MAKE_CORPUS


def corpus(count: int, fmt: str = "maildir", seed: int = 1) -> Path:
    """A generated corpus of ``count`` messages, made once and kept in WORK."""
    out = WORK / f"corpus-{fmt}-{count}-{seed}"
    done = out.with_name(out.name + ".done")
    if done.exists():
        return out
    tool = need_corpus_tool()
    subprocess.run(
        [
            sys.executable,
            str(tool),
            "--count",
            str(count),
            "--out",
            str(out),
            "--format",
            fmt,
            "--seed",
            str(seed),
            "--manifest",
            "",
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    done.touch()
    return out


def corpus_files(directory: Path) -> list[Path]:
    """Every message file of a Maildir or .eml corpus, in name order."""
    found = [p for sub in ("new", "cur") for p in sorted((directory / sub).iterdir())]
    return found or sorted(directory.glob("*.eml"))


def drop_page_cache_hint(paths: list[Path]) -> None:
    """Read every file once so that all runs start with a warm page cache."""
    for path in paths:
        path.read_bytes()


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a one-item list that holds the elapsed seconds afterwards."""
    elapsed = [0.0]
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - start


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def figure(name: str, value: float, unit: str, note: str = "") -> None:
    """Print one measured figure."""
    text = f"  {name:<44} {value:>12,.3f} {unit}"
    print(text + (f"  ({note})" if note else ""), flush=True)


def ratio(name: str, value: float, target: str = "") -> None:
    """Print one ratio to a baseline, with its target when there is one."""
    text = f"  ratio {name:<38} {value:>12.3f}"
    print(text + (f"  target {target}" if target else ""), flush=True)


def heading(title: str) -> None:
    print(f"\n== {title}", flush=True)


def bench_env() -> dict[str, str]:
    """The environment for mailbot processes started by a benchmark."""
    return {**os.environ, "MAILBOT_BENCH_SIGNING_KEY": SIGNING_KEY}


def mailbot_command(config: Path, *args: str) -> list[str]:
    """``mailbot --config CONFIG ARGS`` from this virtualenv."""
    program = Path(sys.executable).with_name("mailbot")
    return [str(program), "--config", str(config), *args]


def write_config(path: Path, data_dir: Path, extra: str = "") -> Path:
    """A mailbot.toml with the default Porong units and staff."""
    text = (
        "[office]\n"
        'signing_key_env = "MAILBOT_BENCH_SIGNING_KEY"\n'
        "[storage]\n"
        f'data_dir = "{data_dir}"\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + extra, encoding="utf-8")
    return path


@contextmanager
def dovecot_server() -> Iterator[Any]:
    """A private Dovecot from tests/dovecot.py, stopped and removed afterwards."""
    (WORK / "tls").mkdir(parents=True, exist_ok=True)
    tls = servers.make_tls(WORK / "tls")
    oauth = oauthserver.OAuthServer()
    server = dovecot.launch_dovecot(tls, oauth.introspection_url)
    try:
        yield server
    finally:
        server.stop()
        server.remove()
        oauth.stop()


def account_toml(server: Any, user: Any, name: str, **extra: object) -> str:
    """One [[accounts]] table for a Dovecot user, its password in the env."""
    env_name = f"MAILBOT_BENCH_PW_{name.upper()}"
    os.environ[env_name] = user.password
    inbox = clirun.Inbox(name, replace(user, password_env=env_name), f"{name}@x.test")
    return str(clirun.account_toml(server, inbox, **extra))


def smtp_toml(sink: Any) -> str:
    """An [smtp] table sending to a test sink."""
    return (
        f'[smtp]\nhost = "{servers.LOOPBACK}"\nport = {sink.port}\nsecurity = "none"\n'
        'from_address = "porong@sidoarjokab.go.id"\n'
    )
