"""Connections and transactions of the PostgreSQL store."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final, TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = ["Connection", "ConnectionSet", "transact"]

logger = logging.getLogger("switchboard.store")

Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)

_T = TypeVar("_T")

_MAX_ATTEMPTS: Final = 8
"""Attempts of one transaction that keeps failing with a retryable error."""

DEDUPLICATION_INDEX: Final = "inbox_client_ids"
"""Unique index on (sender, device, client id). A violation means a resend
committed meanwhile; the retry then finds it and returns the first copy."""


class ConnectionSet:
    """Connections of one store operation: at most one per database.

    An operation that touches a database twice reuses its connection rather
    than waiting on the same pool for a second one.
    """

    def __init__(
        self,
        pools: Sequence[asyncpg.Pool[asyncpg.Record]],
        acquire_timeout_s: float,
    ) -> None:
        self._pools = pools
        self._acquire_timeout_s = acquire_timeout_s
        self._held: dict[int, PoolConnectionProxy[asyncpg.Record]] = {}

    async def get(self, database: int) -> Connection:
        """Return this operation's connection to ``database``, acquiring it once.

        Connections are acquired in ascending database order, so two
        operations can never each hold a connection the other waits for.
        Raises AssertionError for a database below one already held.
        """
        conn = self._held.get(database)
        if conn is not None:
            return conn
        if self._held and database < max(self._held):
            raise AssertionError(
                f"connection to database {database} requested after database "
                f"{max(self._held)}; acquire connections in ascending order"
            )

        conn = await self._pools[database].acquire(timeout=self._acquire_timeout_s)
        self._held[database] = conn
        return conn

    async def get_many(self, databases: Iterable[int]) -> None:
        """Acquire a connection to each of ``databases``, in ascending order."""
        for database in sorted(set(databases)):
            await self.get(database)

    async def get_all(self) -> None:
        """Acquire a connection to every database, in ascending order.

        An operation whose databases are known only as it runs (the members
        of a group, the targets of an outbox row) calls this first.
        """
        for database in range(len(self._pools)):
            await self.get(database)

    async def release(self) -> None:
        """Return every connection to its pool, which resets its session."""
        held, self._held = self._held, {}
        for database, conn in held.items():
            await self._pools[database].release(conn)


async def transact(
    conn: Connection, name: str, work: Callable[[], Awaitable[_T]]
) -> _T:
    """Run ``work`` in a transaction on ``conn``, retrying it when it must.

    A deadlock or serialization failure rolls the transaction back, so
    ``work`` runs again from the start, up to _MAX_ATTEMPTS times. So does a
    violation of the deduplication index. Other errors propagate.
    """
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                return await work()
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            if attempt == _MAX_ATTEMPTS:
                raise
            logger.info("%s: retrying transaction (attempt %d): %s", name, attempt, exc)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != DEDUPLICATION_INDEX or attempt == _MAX_ATTEMPTS:
                raise
            logger.debug("%s: a resend committed first; retrying", name)
    raise AssertionError("unreachable: the last attempt returns or raises")
