"""Append messages to a SqliteStore and print each acknowledged one.

Run by test_sqlite_durability.py, which kills this process with SIGKILL. The
script creates users ``alice`` and ``bob``, then ``--senders`` concurrent tasks
append messages from alice's device ``phone`` to bob, with client ids 1, 2, ...
and the body ``b"message <client id>"``. As soon as an append returns, the
script prints ``<client id> <message id> <recipient seq>`` and flushes stdout.
It stops after ``--max-messages`` appends unless it is killed first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import pathlib
import sys

from switchboard.ids import ClientMessageId, DeviceId
from switchboard.store.sqlite import SqliteStore


async def append_until_killed(
    path: pathlib.Path, synchronous: str, senders: int, max_messages: int
) -> None:
    store = SqliteStore(path, synchronous=synchronous)
    await store.open()
    alice = await store.create_user("alice", "hash", 0)
    bob = await store.create_user("bob", "hash", 0)
    client_ids = itertools.count(1)

    async def send_messages() -> None:
        for client_id in client_ids:
            if client_id > max_messages:
                return
            result = await store.append_message(
                alice.id,
                DeviceId("phone"),
                ClientMessageId(client_id),
                bob.id,
                1,
                f"message {client_id}".encode(),
                0,
            )
            sys.stdout.write(
                f"{client_id} {result.message.id} {result.recipient_seq}\n"
            )
            sys.stdout.flush()

    try:
        await asyncio.gather(*(send_messages() for _ in range(senders)))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=pathlib.Path, help="database file")
    parser.add_argument("--synchronous", choices=["normal", "full"], default="normal")
    parser.add_argument(
        "--senders", type=int, default=50, help="number of concurrent senders"
    )
    parser.add_argument(
        "--max-messages",
        type=int,
        default=200_000,
        help="number of appends after which the script exits",
    )
    args = parser.parse_args()
    asyncio.run(
        append_until_killed(
            args.path, args.synchronous, args.senders, args.max_messages
        )
    )


if __name__ == "__main__":
    main()
