"""Fixtures that run the store tests against every Store implementation.

To add an implementation, add its name to ``STORE_KINDS`` and a branch to
``store_factory`` that builds it on storage private to the test.

``postgres`` is one database. ``postgres-sharded`` assigns even shards to one
database and odd shards to another, so consecutive user and group ids land in
different databases and most writes take the outbox path.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from switchboard.store.base import Store
from switchboard.store.sqlite import SqliteStore
from tests.support.postgres import (
    ScratchDatabases,
    interleaved_shard_map,
    scratch_databases,
)

StoreFactory = Callable[[], Store]
"""Makes a new, unopened store on the same data as every earlier one."""

STORE_KINDS = ["sqlite", "postgres", "postgres-sharded"]


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[ScratchDatabases]:
    """Two databases private to this test run, dropped at its end."""
    with scratch_databases(2) as databases:
        yield databases


@pytest.fixture(params=STORE_KINDS)
def store_factory(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> StoreFactory:
    """Return a factory of stores that share one test's data, to test reopening."""
    kind: str = request.param
    if kind == "sqlite":
        path = tmp_path / "switchboard.db"
        return lambda: SqliteStore(path)

    # Imported here, so the SQLite tests run without the cluster extra.
    from switchboard.store.postgres import PostgresStore

    databases: ScratchDatabases = request.getfixturevalue("postgres_databases")
    databases.empty()
    if kind == "postgres":
        return lambda: PostgresStore(databases.dsns[0], pool_size=4)
    if kind == "postgres-sharded":
        shard_map = interleaved_shard_map(databases.dsns)
        return lambda: PostgresStore(shard_map, pool_size=4)
    raise AssertionError(f"no factory for store kind {kind!r}")


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    """An open store with empty data, closed after the test."""
    store = store_factory()
    await store.open()
    try:
        yield store
    finally:
        await store.close()
