"""Fetch: 10,000 new messages from Dovecot on loopback, by batch size.

mailbot's ``Mailbox.fetch`` (BODY.PEEK[] and INTERNALDATE, one FETCH per batch)
is timed for several batch sizes next to a bare imapclient fetch of the same
messages in the same run.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import common

from mailbot.imap import Mailbox

BATCH_SIZES = (25, 100, 250, 500, 1000)


def seed_corpus(server: Any, user: Any, count: int) -> list[int]:
    files = common.corpus_files(common.corpus(count))
    raws = [path.read_bytes() for path in files]
    with common.stopwatch() as elapsed:
        uids = server.seed(user, raws)
    size = sum(len(raw) for raw in raws)
    common.figure(f"seed {len(raws):,} messages ({size / 1e6:.0f} MB)", elapsed[0], "s")
    return list(uids)


def bare_fetch(server: Any, user: Any, uids: list[int], batch: int) -> float:
    with common.stopwatch() as elapsed, server.session(user) as client:
        client.select_folder("INBOX")
        for start in range(0, len(uids), batch):
            reply = client.fetch(uids[start : start + batch], ["BODY.PEEK[]"])
            assert len(reply) == len(uids[start : start + batch])
    return elapsed[0]


def mailbot_fetch(server: Any, user: Any, uids: list[int], batch: int) -> float:
    account = server.account(user, batch_size=batch, password_env=user.password_env)
    with common.stopwatch() as elapsed, Mailbox(account) as box:
        box.select()
        fetched = box.fetch(uids)
    assert len(fetched) == len(uids)
    return elapsed[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    common.heading(f"fetch: {args.count:,} new messages from Dovecot on loopback")
    with common.dovecot_server() as server:
        user = server.take_user()
        env_name = "MAILBOT_BENCH_PW_FETCH"
        common.os.environ[env_name] = user.password
        user = common.replace(user, password_env=env_name)
        uids = seed_corpus(server, user, args.count)
        n = len(uids)
        # Twice, the better kept: the first read also warms Dovecot's caches.
        bare = min(bare_fetch(server, user, uids, 500) for _ in range(2))
        common.figure("bare imapclient fetch (500 per FETCH)", n / bare, "msgs/s")
        best = 0.0
        for batch in BATCH_SIZES:
            seconds = mailbot_fetch(server, user, uids, batch)
            best = max(best, n / seconds)
            common.figure(
                f"mailbot Mailbox.fetch, batch_size {batch}", n / seconds, "msgs/s"
            )
    common.ratio("best mailbot batch / bare imapclient", best / (n / bare))


if __name__ == "__main__":
    main()
