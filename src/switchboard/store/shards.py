"""Shard map: which physical database stores a user's or a group's rows.

Rows keyed by a user id (inboxes, devices) or a group id (groups, members,
group history) live in logical shard ``id % shard_count``. The map assigns
each logical shard to one of a few physical databases. There are many more
logical shards than databases, so that adding a database means moving whole
shards, never splitting one (docs/deploy.md tells how).

This module imports no database driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_SHARD_COUNT", "ShardMap"]

DEFAULT_SHARD_COUNT: Final = 256


@dataclass(frozen=True)
class ShardMap:
    """Logical shards and the databases they are assigned to.

    ``dsns`` are the databases' connection strings, in a fixed order: a
    database's position in the list is its index. ``assignment[shard]`` is
    the index of the database that stores ``shard``. Database 0 also stores
    the unsharded tables (accounts, sessions and the id sequences).
    """

    dsns: tuple[str, ...] = field(repr=False)  # may contain passwords
    assignment: tuple[int, ...]

    def __post_init__(self) -> None:
        # Tuples, so that a map built from lists compares equal to the stored one.
        object.__setattr__(self, "dsns", tuple(self.dsns))
        object.__setattr__(self, "assignment", tuple(self.assignment))

        if not self.dsns:
            raise ValueError("invalid shard map: no database DSN given")
        if not self.assignment:
            raise ValueError("invalid shard map: no logical shards")

        for shard, database in enumerate(self.assignment):
            if not 0 <= database < len(self.dsns):
                raise ValueError(
                    f"invalid shard map: shard {shard} is assigned to database "
                    f"{database}, but only databases 0 to {len(self.dsns) - 1} exist"
                )

    @classmethod
    def even(
        cls, dsns: Sequence[str], shard_count: int = DEFAULT_SHARD_COUNT
    ) -> ShardMap:
        """Spread ``shard_count`` shards over ``dsns`` in contiguous ranges.

        With one DSN every shard is on it. With N DSNs database i gets the
        i-th of N nearly equal ranges of shards.
        """
        if shard_count < 1:
            raise ValueError(f"invalid shard count {shard_count}: must be at least 1")
        if len(dsns) > shard_count:
            raise ValueError(
                f"invalid shard map: {len(dsns)} databases for {shard_count} shards;"
                " give at least as many shards as databases"
            )

        assignment = tuple(
            shard * len(dsns) // shard_count for shard in range(shard_count)
        )
        return cls(tuple(dsns), assignment)

    @property
    def shard_count(self) -> int:
        return len(self.assignment)

    def shard_of(self, key: int) -> int:
        """Return the logical shard of a user or group id."""
        return key % self.shard_count

    def database_of(self, key: int) -> int:
        """Return the index of the database that stores a user's or group's rows."""
        return self.assignment[self.shard_of(key)]

    def shards_of(self, database: int) -> list[int]:
        """Return the logical shards assigned to a database, ascending."""
        return [
            shard
            for shard, assigned in enumerate(self.assignment)
            if assigned == database
        ]
