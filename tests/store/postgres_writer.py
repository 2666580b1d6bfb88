"""Append messages to a PostgresStore from a process of its own.

Run by test_postgres_store.py. With ``--group`` every message goes to that
group from a random member of ``--users``. Otherwise each goes from one random
user of ``--users`` to another, or with ``--from-first`` from the first user
to the second.
``--tasks`` concurrent tasks share ``--count`` appends. The device is
``--device`` and client ids count from 1. After each append the script prints
one JSON line: {"id": message id, "seqs": {user id: seq}}.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys

from switchboard.ids import ClientMessageId, DeviceId, GroupId, UserId
from switchboard.store.postgres import PostgresStore
from switchboard.store.shards import ShardMap
from tests.support.postgres import interleaved_shard_map


async def write(args: argparse.Namespace) -> None:
    dsns = tuple(args.dsn)
    shard_map = interleaved_shard_map(dsns) if args.interleaved else ShardMap.even(dsns)
    store = PostgresStore(shard_map, pool_size=args.tasks)
    await store.open()
    users = [UserId(int(user)) for user in args.users.split(",")]
    rng = random.Random(args.seed)
    client_ids = itertools.count(1)
    device = DeviceId(args.device)

    async def append(client_id: int) -> dict[str, object]:
        sender, recipient = users[:2] if args.from_first else rng.sample(users, 2)
        body = f"{args.device} {client_id}".encode()
        if args.group is not None:
            result = await store.append_group_message(
                sender,
                device,
                ClientMessageId(client_id),
                GroupId(args.group),
                1,
                body,
                0,
            )
            return {"id": result.message.id, "seqs": result.seqs}
        direct = await store.append_message(
            sender, device, ClientMessageId(client_id), recipient, 1, body, 0
        )
        seqs = {sender: direct.sender_seq, recipient: direct.recipient_seq}
        return {"id": direct.message.id, "seqs": seqs}

    async def run_task() -> None:
        for client_id in client_ids:
            if client_id > args.count:
                return
            line = json.dumps(await append(client_id))
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    try:
        await asyncio.gather(*(run_task() for _ in range(args.tasks)))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", action="append", required=True)
    parser.add_argument("--interleaved", action="store_true")
    parser.add_argument("--users", required=True, help="comma-separated user ids")
    parser.add_argument("--group", type=int, default=None)
    parser.add_argument("--from-first", action="store_true")
    parser.add_argument("--device", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(write(parser.parse_args()))


if __name__ == "__main__":
    main()
