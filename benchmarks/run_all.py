"""Runs every benchmark in turn (``make bench``); each prints its own figures.

Every benchmark runs in its own process, so that peak memory and imports of one
never colour another. ``bench_digest.py`` runs too when it is present. Extra
arguments are passed on: ``run_all.py --quick`` uses small sizes for a smoke run.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
FULL = [
    ("bench_ingest.py", ["--count", "10000"]),
    ("bench_poll.py", ["--large", "100000"]),
    ("bench_fetch.py", ["--count", "10000"]),
    ("bench_latency.py", ["--rounds", "10"]),
    ("bench_memory.py", []),
    ("bench_workers.py", ["--count", "2000"]),
    ("bench_digest.py", []),
]
QUICK = {
    "bench_ingest.py": ["--count", "500"],
    "bench_poll.py": ["--large", "2000", "--runs", "8"],
    "bench_fetch.py": ["--count", "500"],
    "bench_latency.py": ["--rounds", "3"],
    "bench_workers.py": ["--count", "200"],
}


def describe_machine() -> None:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = f"{len(names)} x {names[0]}" if names else cpu
    print(f"machine: {platform.node()}, {cpu}, Python {platform.python_version()}")


def main() -> int:
    common.need_corpus_tool()
    quick = "--quick" in sys.argv[1:]
    describe_machine()
    failed = []
    for name, full_args in FULL:
        script = HERE / name
        if not script.exists():
            print(f"\n== {name}: not present, skipped")
            continue
        args = QUICK.get(name, full_args) if quick else full_args
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(script), *args], check=False)
        print(f"  ({name} took {time.perf_counter() - start:.0f} s)", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
