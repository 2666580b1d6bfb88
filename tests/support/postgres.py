"""Throwaway PostgreSQL databases for tests, on the local server.

A test run creates its own databases named ``sb_test_<random>_<n>`` and drops
them at the end, so runs in parallel (or in other worktrees) never share
data. Tests reset a database's schema between them with ``reset_schema``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from switchboard.store.shards import ShardMap

ROOT = Path(__file__).resolve().parent.parent.parent

SERVER_DSN = "postgresql://postgres@127.0.0.1:5432"
ADMIN_DSN = f"{SERVER_DSN}/postgres"


@dataclass(frozen=True)
class ScratchDatabases:
    """Databases of one test run, all on the local server."""

    dsns: tuple[str, ...]

    def reset(self) -> None:
        """Drop every table and sequence, so the next store migrates anew."""
        asyncio.run(_reset_all(self.dsns))

    def empty(self) -> None:
        """Delete every row but keep the schema, which is faster than reset()."""
        asyncio.run(_empty_all(self.dsns))


def start_postgres() -> None:
    """Start the local server with scripts/services unless it is running."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "services"), "postgres"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/services postgres failed: {result.stderr}")


@contextlib.contextmanager
def scratch_databases(count: int) -> Iterator[ScratchDatabases]:
    """Create ``count`` empty databases for this run; drop them afterwards."""
    start_postgres()
    prefix = f"sb_test_{secrets.token_hex(4)}"
    names = [f"{prefix}_{index}" for index in range(count)]
    statements = []
    for name in names:
        statements.append(f'CREATE DATABASE "{name}"')
        # Tests check behaviour, not durability, so commits need not wait for
        # the WAL flush.
        statements.append(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    asyncio.run(_admin(*statements))
    try:
        yield ScratchDatabases(tuple(f"{SERVER_DSN}/{name}" for name in names))
    finally:
        # FORCE ends sessions a failed test left open (PostgreSQL 13+).
        asyncio.run(
            _admin(
                *(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names)
            )
        )


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _reset_all(dsns: tuple[str, ...]) -> None:
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()


def interleaved_shard_map(dsns: tuple[str, ...]) -> ShardMap:
    """Assign shard i to database ``i % len(dsns)``, so consecutive ids alternate."""
    return ShardMap(dsns, tuple(shard % len(dsns) for shard in range(256)))


async def _empty_all(dsns: tuple[str, ...]) -> None:
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        try:
            tables = await conn.fetch(
                "SELECT quote_ident(tablename) AS name FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'schema_version'"
            )
            sequences = await conn.fetch(
                "SELECT quote_ident(sequencename) AS name FROM pg_sequences"
                " WHERE schemaname = 'public'"
            )
            # DELETE is faster than TRUNCATE on tables this small. The
            # replica role skips foreign key checks, so the order is free.
            statements = ["SET session_replication_role = replica"]
            statements += [f"DELETE FROM {row['name']}" for row in tables]
            statements += [f"ALTER SEQUENCE {row['name']} RESTART" for row in sequences]
            statements.append("RESET session_replication_role")
            await conn.execute("; ".join(statements))
        finally:
            await conn.close()
