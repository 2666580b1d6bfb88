"""Maintenance of a sharded PostgreSQL store: add a database, move shards.

Run as ``python -m switchboard.store.postgres_admin``; docs/deploy.md gives
the whole procedure. Every Switchboard process using the store must be
stopped while shards move, because a running process keeps the shard map it
read at open().
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Final

import asyncpg

from switchboard.store.base import StoreError
from switchboard.store.postgres_conn import Connection
from switchboard.store.postgres_schema import SCHEMA_VERSION, migrate

__all__ = ["move_shards", "prepare_database"]

logger = logging.getLogger("switchboard.store")

_SHARDED_TABLES: Final = (
    # (table, key column); parents before children for the foreign keys.
    ("groups", "id"),
    ("group_members", "group_id"),
    ("group_messages", "group_id"),
    ("inbox_heads", "user_id"),
    # Before inbox, whose insert trigger adds contacts rows as well.
    ("contacts", "user_id"),
    ("inbox", "user_id"),
    ("conversations", "user_id"),
    ("devices", "user_id"),
    ("last_seen", "user_id"),
)

_TRIGGER_COLUMNS: Final = {"inbox": ("search",)}
"""Columns that a trigger of the target database fills in as rows arrive."""


async def prepare_database(dsn: str, database_index: int, shard_count: int) -> None:
    """Create the schema in a new, empty database and record its index."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO database_identity (database_index, shard_count)"
            " VALUES ($1, $2) ON CONFLICT (singleton) DO NOTHING",
            database_index,
            shard_count,
        )
        row = await conn.fetchrow(
            "SELECT database_index, shard_count FROM database_identity"
        )
    finally:
        await conn.close()

    assert row is not None, "database_identity row missing after insert"
    if (row["database_index"], row["shard_count"]) != (database_index, shard_count):
        raise StoreError(
            f"database is set up as database {row['database_index']} of "
            f"{row['shard_count']} shards already, not {database_index}"
        )
    logger.info("prepared database %d for %d shards", database_index, shard_count)


async def move_shards(
    source_dsn: str, target_dsn: str, directory_dsn: str, shards: Sequence[int]
) -> dict[str, int]:
    """Move the rows of ``shards`` from one database to another.

    Copies every sharded table's rows of those shards, deletes them from the
    source and reassigns the shards in the stored shard map (in database 0,
    ``directory_dsn``). Returns the number of rows moved per table. The
    target commits before the source, so a failure between the two commits
    leaves the rows in both databases: delete the target's copies before
    running the move again.
    """
    source = await asyncpg.connect(source_dsn)
    target = await asyncpg.connect(target_dsn)
    directory = await asyncpg.connect(directory_dsn)
    try:
        source_index, shard_count = await _identity(source)
        target_index, target_shards = await _identity(target)
        _check_move(source_index, target_index, shard_count, target_shards, shards)
        for conn in (source, target):
            await _check_quiet(conn)

        moved = await _copy_and_delete(source, target, shard_count, list(shards))
        await directory.execute(
            "UPDATE shard_map SET database_index = $1 WHERE shard = ANY($2)",
            target_index,
            list(shards),
        )
    finally:
        for conn in (source, target, directory):
            await conn.close()

    logger.info(
        "moved %d shards from database %d to database %d: %s",
        len(shards),
        source_index,
        target_index,
        moved,
    )
    return moved


async def _identity(conn: Connection) -> tuple[int, int]:
    version = await conn.fetchval(
        "SELECT coalesce(max(version), 0) FROM schema_version"
    )
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"database has schema version {version}, expected {SCHEMA_VERSION}; "
            "open it with this Switchboard version (or prepare it) first"
        )
    row = await conn.fetchrow(
        "SELECT database_index, shard_count FROM database_identity"
    )
    if row is None:
        raise StoreError("database has no identity; run prepare on it first")
    return row["database_index"], row["shard_count"]


def _check_move(
    source_index: int,
    target_index: int,
    shard_count: int,
    target_shards: int,
    shards: Sequence[int],
) -> None:
    if source_index == target_index:
        raise StoreError(f"source and target are both database {source_index}")
    if shard_count != target_shards:
        raise StoreError(
            f"source has {shard_count} shards and target {target_shards}; "
            "prepare the target with the same shard count"
        )
    for shard in shards:
        if not 0 <= shard < shard_count:
            raise StoreError(f"invalid shard {shard}: expected 0 to {shard_count - 1}")


async def _check_quiet(conn: Connection) -> None:
    pending = await conn.fetchval("SELECT count(*) FROM outbox")
    if pending:
        raise StoreError(
            f"{pending} messages still wait in the outbox; open the store once "
            "with the old shard map so it relays them, then stop it and retry"
        )


async def _copy_and_delete(
    source: Connection, target: Connection, shard_count: int, shards: list[int]
) -> dict[str, int]:
    # NOTE: reads each table's rows of the moved shards into memory at once;
    # shards larger than the memory at hand need a streaming COPY instead.
    moved: dict[str, int] = {}
    async with source.transaction(), target.transaction():
        for table, key in _SHARDED_TABLES:
            where = f"{key} % {int(shard_count)} = ANY($1::integer[])"
            records = await source.fetch(f"SELECT * FROM {table} WHERE {where}", shards)
            if records:
                skipped = _TRIGGER_COLUMNS.get(table, ())
                # A Record iterates over its values, so keys() is needed.
                names = records[0].keys()
                columns = [c for c in names if c not in skipped]
                await target.copy_records_to_table(
                    table,
                    records=[tuple(r[c] for c in columns) for r in records],
                    columns=columns,
                )
            moved[table] = len(records)

        # Children before parents, the reverse of the copy order.
        for table, key in reversed(_SHARDED_TABLES):
            where = f"{key} % {int(shard_count)} = ANY($1::integer[])"
            await source.execute(f"DELETE FROM {table} WHERE {where}", shards)
    return moved


def _parse_shards(text: str) -> list[int]:
    """Parse ``"1,3,10-12"`` into [1, 3, 10, 11, 12]."""
    shards: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        shards.extend(range(int(first), int(last or first) + 1))
    return shards


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m switchboard.store.postgres_admin", description=__doc__
    )
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="set up a new, empty database")
    prepare.add_argument("dsn", help="the new database's DSN")
    prepare.add_argument(
        "index", type=int, help="its position in the DSN list (the next free one)"
    )
    prepare.add_argument("--shards", type=int, default=256, help="logical shard count")

    move = commands.add_parser("move", help="move shards between two databases")
    move.add_argument("source", help="DSN of the database that stores the shards now")
    move.add_argument("target", help="DSN of the database to move them to")
    move.add_argument("shards", type=_parse_shards, help="shards, e.g. 128-255 or 1,3")
    move.add_argument(
        "--directory",
        required=True,
        help="DSN of database 0, which stores the shard map",
    )

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "prepare":
            asyncio.run(prepare_database(args.dsn, args.index, args.shards))
        else:
            asyncio.run(
                move_shards(args.source, args.target, args.directory, args.shards)
            )
    except (StoreError, asyncpg.PostgresError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
