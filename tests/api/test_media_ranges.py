"""Parsing of HTTP Range headers for media downloads."""

from __future__ import annotations

import pytest

from switchboard.api.ranges import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 1)),
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-199", ByteRange(100, 200)),
        ("bytes=900-", ByteRange(900, 1000)),
        ("bytes=999-", ByteRange(999, 1000)),
        ("bytes=-10", ByteRange(990, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),
        ("bytes=500-5000", ByteRange(500, 1000)),
        ("bytes = 1 - 2", ByteRange(1, 3)),
    ],
)
def test_satisfiable_range(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "bytes=5-4",  # last before first: invalid, so ignored
        "items=0-1",
        "bytes=0-1,5-6",  # several ranges: the whole file is sent
        "bytes=a-b",
        "bytes=0x10-",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits are not HTTP digits
    ],
)
def test_ignored_range_sends_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_unsatisfiable_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


def test_content_range_value() -> None:
    assert ByteRange(990, 1000).content_range(SIZE) == "bytes 990-999/1000"
    assert ByteRange(990, 1000).length == 10
