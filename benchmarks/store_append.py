"""Measure SqliteStore.append_message throughput with 1 and 100 concurrent senders.

Each run opens a new database in a temporary directory (``--dir``, the system
default otherwise), creates 10 users, and appends ``--messages`` messages
split evenly between the senders. Sender ``k`` sends as user ``k mod 10`` from
device ``d<k>`` to the next user. The script prints the median appends per
second and commits per run over ``--runs`` runs for each sender count.

Run from the repository root::

    .venv/bin/python benchmarks/store_append.py --synchronous normal
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import platform
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass

from switchboard.ids import ClientMessageId, DeviceId
from switchboard.store.base import User
from switchboard.store.sqlite import SqliteStore

USER_COUNT = 10
BODY = b"x" * 100


@dataclass(frozen=True)
class RunResult:
    appends_per_second: float
    cpu_us_per_append: float
    commits: int


async def run_once(
    directory: pathlib.Path, senders: int, messages: int, synchronous: str
) -> RunResult:
    with tempfile.TemporaryDirectory(dir=directory) as temp_dir:
        store = SqliteStore(
            pathlib.Path(temp_dir) / "bench.db", synchronous=synchronous
        )
        await store.open()
        try:
            users = [
                await store.create_user(f"user{i}", "hash", 0)
                for i in range(USER_COUNT)
            ]
            commits_before = store.commits
            per_sender = messages // senders

            started = time.perf_counter()
            cpu_started = time.process_time()
            await asyncio.gather(
                *(send_messages(store, users, k, per_sender) for k in range(senders))
            )
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started

            return RunResult(
                appends_per_second=per_sender * senders / elapsed,
                cpu_us_per_append=cpu * 1e6 / (per_sender * senders),
                commits=store.commits - commits_before,
            )
        finally:
            await store.close()


async def send_messages(
    store: SqliteStore, users: list[User], sender_index: int, count: int
) -> None:
    sender = users[sender_index % USER_COUNT]
    recipient = users[(sender_index + 1) % USER_COUNT]
    device = DeviceId(f"d{sender_index}")
    for client_id in range(1, count + 1):
        await store.append_message(
            sender.id, device, ClientMessageId(client_id), recipient.id, 1, BODY, 0
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=20_000, help="appends per run (default 20000)"
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per sender count (default 5)"
    )
    parser.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default="normal",
        help="SqliteStore durability mode (default normal)",
    )
    parser.add_argument(
        "--dir",
        type=pathlib.Path,
        default=None,
        help="directory for the temporary databases (default: system temp dir)",
    )
    args = parser.parse_args()
    directory = args.dir or pathlib.Path(tempfile.gettempdir())

    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"synchronous={args.synchronous}, {args.messages} appends per run, "
        f"median of {args.runs} runs, databases in {directory}"
    )
    for senders in (1, 100):
        results = [
            await run_once(directory, senders, args.messages, args.synchronous)
            for _ in range(args.runs)
        ]
        rate = statistics.median(result.appends_per_second for result in results)
        cpu = statistics.median(result.cpu_us_per_append for result in results)
        commits = statistics.median(result.commits for result in results)
        print(
            f"{senders:>3} senders: {rate:>9,.0f} appends/s, "
            f"{cpu:.1f} µs CPU per append, {commits:,.0f} commits per run"
        )


if __name__ == "__main__":
    asyncio.run(main())
