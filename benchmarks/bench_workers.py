"""Workers: the four-worker PostgreSQL test at full size, 2,000 messages.

Runs tests/test_workers.py with MAILBOT_WORKERS_MESSAGES set; the test prints
the elapsed time and how many letters reached the SMTP sink twice.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import common


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    common.heading(f"workers: 4 on PostgreSQL, {args.count:,} messages, one killed")
    env = {**os.environ, "MAILBOT_WORKERS_MESSAGES": str(args.count)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            str(common.TESTS / "test_workers.py"),
        ],
        env=env,
        cwd=common.REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if "workers" in line]
    print("  " + ("\n  ".join(lines) or done.stdout[-2000:]))
    if done.returncode != 0:
        raise SystemExit(f"the workers test failed:\n{done.stdout[-3000:]}")
    print("  (elapsed: from the workers' start to the last letter delivered)")


if __name__ == "__main__":
    main()
