"""Ingest: ``mailbot import`` of a 10,000-message Maildir into a fresh SQLite.

Runs the real command line as a process (start-up included) and compares its
rate with two baselines measured in the same run on the same files: reading
the files only, and parsing each with mail-parser alone.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
from pathlib import Path

import common
import mailparser


def read_only(files: list[Path]) -> float:
    with common.stopwatch() as elapsed:
        for path in files:
            path.read_bytes()
    return elapsed[0]


def parse_only(files: list[Path]) -> float:
    with common.stopwatch() as elapsed:
        for path in files:
            mailparser.parse_from_bytes(path.read_bytes())
    return elapsed[0]


def mailbot_import(maildir: Path, count: int, extra: str) -> float:
    root = common.WORK / f"ingest-{count}"
    shutil.rmtree(root, ignore_errors=True)
    config = common.write_config(root / "mailbot.toml", root / "storage", extra)
    command = common.mailbot_command(config, "import", str(maildir))
    with common.stopwatch() as elapsed:
        done = subprocess.run(
            command, env=common.bench_env(), capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"mailbot import failed:\n{done.stderr[-3000:]}")
    print("  " + done.stdout.strip().splitlines()[-1])
    return elapsed[0]


def main() -> None:
    # mail-parser logs every part it does not handle; the figures matter here.
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    common.heading(f"ingest: mailbot import of {args.count:,} messages (Maildir)")

    maildir = common.corpus(args.count)
    files = common.corpus_files(maildir)
    common.drop_page_cache_hint(files)
    size = sum(p.stat().st_size for p in files)
    common.figure("corpus", size / 1e6, "MB", f"{len(files):,} files")

    read_s = read_only(files)
    parse_s = parse_only(files)
    import_s = mailbot_import(maildir, args.count, "")
    n = len(files)
    common.figure("read files only", n / read_s, "msgs/s")
    common.figure("parse with mail-parser only", n / parse_s, "msgs/s")
    common.figure("mailbot import (CLI, start-up included)", n / import_s, "msgs/s")
    common.ratio("import / parse-only rate", parse_s / import_s, ">= 0.5")
    common.ratio("import / read-only rate", read_s / import_s)


if __name__ == "__main__":
    main()
