"""Fixtures that run the store tests against every Store implementation.

To add an implementation, add its name to ``STORE_KINDS`` and a branch to
``store_factory`` that builds it on storage private to the test.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable

import pytest

from switchboard.store.base import Store
from switchboard.store.sqlite import SqliteStore

StoreFactory = Callable[[], Store]
"""Makes a new, unopened store on the same data as every earlier one."""

STORE_KINDS = ["sqlite"]


@pytest.fixture(params=STORE_KINDS)
def store_factory(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> StoreFactory:
    """Return a factory of stores that share one test's data, to test reopening."""
    kind: str = request.param
    if kind == "sqlite":
        path = tmp_path / "switchboard.db"
        return lambda: SqliteStore(path)
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
