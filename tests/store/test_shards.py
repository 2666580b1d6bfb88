"""ShardMap: assignment of logical shards to databases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.store.postgres_admin import _parse_shards
from switchboard.store.shards import ShardMap


@given(databases=st.integers(1, 16), shard_count=st.integers(16, 1024))
def test_even_map_spreads_contiguous_ranges(databases: int, shard_count: int) -> None:
    dsns = [f"postgresql:///db{i}" for i in range(databases)]

    shard_map = ShardMap.even(dsns, shard_count)

    assert shard_map.shard_count == shard_count
    assert list(shard_map.assignment) == sorted(shard_map.assignment)
    sizes = [len(shard_map.shards_of(index)) for index in range(databases)]
    assert sum(sizes) == shard_count
    assert max(sizes) - min(sizes) <= 1


def test_one_dsn_gets_every_shard() -> None:
    shard_map = ShardMap.even(["postgresql:///only"])

    assert shard_map.shard_count == 256
    assert set(shard_map.assignment) == {0}
    assert shard_map.database_of(123_456) == 0


def test_database_of_follows_assignment() -> None:
    shard_map = ShardMap(("a", "b"), (0, 1, 1, 0))

    assert [shard_map.database_of(key) for key in range(8)] == [0, 1, 1, 0] * 2
    assert shard_map.shard_of(-1) == 3
    assert shard_map.shards_of(1) == [1, 2]


@pytest.mark.parametrize(
    ("dsns", "assignment", "message"),
    [
        ((), (0,), "no database DSN"),
        (("a",), (), "no logical shards"),
        (("a", "b"), (0, 2), "shard 1 is assigned to database 2"),
        (("a",), (-1,), "shard 0 is assigned to database -1"),
    ],
)
def test_invalid_map_raises(
    dsns: tuple[str, ...], assignment: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ShardMap(dsns, assignment)


def test_more_databases_than_shards_raises() -> None:
    with pytest.raises(ValueError, match="3 databases for 2 shards"):
        ShardMap.even(["a", "b", "c"], 2)


def test_parse_shard_list() -> None:
    assert _parse_shards("1,3,10-12") == [1, 3, 10, 11, 12]
    assert _parse_shards("128-255") == list(range(128, 256))


def test_map_from_lists_equals_tuples() -> None:
    dsns = ["postgresql://u:secret@h/a", "postgresql://u:secret@h/b"]
    from_lists = ShardMap(dsns, [0, 1])  # type: ignore[arg-type]

    assert from_lists == ShardMap(tuple(dsns), (0, 1))
    assert "secret" not in repr(from_lists)
