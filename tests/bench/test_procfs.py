"""Parsers for /proc files, fed literal samples, and the live readers."""

from __future__ import annotations

import os

import pytest

from switchboard.bench.procfs import (
    CLOCK_TICKS,
    parse_cpu_model,
    parse_host_cpu,
    parse_open_files_limit,
    parse_sockstat,
    parse_stat_cpu_seconds,
    parse_status_rss,
    raise_file_limit,
    read_cpu_seconds,
    read_rss,
    read_socket_stats,
)

# Fields 14 and 15 (utime, stime) are 250 and 150 ticks.
STAT_LINE = (
    "4242 (python3 (x) y) S 1 4242 4242 0 -1 4194304 3000 0 0 0 250 150 0 0"
    " 20 0 3 0 12345 456789012 9000 18446744073709551615 1 1 0 0 0 0 0 16781312"
    " 16386 0 0 0 17 1 0 0 0 0 0\n"
)

SOCKSTAT = """\
sockets: used 1890
TCP: inuse 13 orphan 1 tw 7 alloc 16 mem 387
UDP: inuse 2 mem 4
UDPLITE: inuse 0
RAW: inuse 0
FRAG: inuse 0 memory 0
"""


def test_stat_cpu_with_parentheses_in_name() -> None:
    assert parse_stat_cpu_seconds(STAT_LINE) == pytest.approx(400 / CLOCK_TICKS)


@pytest.mark.parametrize("text", ["", "4242 python3 S 1", "1 (x) S 1 2 3"])
def test_stat_cpu_rejects_invalid_line(text: str) -> None:
    with pytest.raises(ValueError, match="invalid /proc/PID/stat"):
        parse_stat_cpu_seconds(text)


def test_status_rss_in_bytes() -> None:
    text = "Name:\tpython3\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nThreads:\t3\n"
    assert parse_status_rss(text) == 2048 * 1024


def test_status_rss_missing_line() -> None:
    with pytest.raises(ValueError, match="no VmRSS"):
        parse_status_rss("Name:\tpython3\nState:\tZ (zombie)\n")


def test_sockstat_tcp_line() -> None:
    stats = parse_sockstat(SOCKSTAT, page_size=4096)
    assert stats.inuse == 13
    assert stats.orphan == 1
    assert stats.time_wait == 7
    assert stats.alloc == 16
    assert stats.memory == 387 * 4096


def test_sockstat_without_tcp_line() -> None:
    with pytest.raises(ValueError, match="no TCP line"):
        parse_sockstat("sockets: used 3\n")


def test_cpu_model_first_entry() -> None:
    text = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nprocessor\t: 1\n"
    assert parse_cpu_model(text) == "Example CPU @ 2.0GHz"
    assert parse_cpu_model("processor\t: 0\n") == "unknown"


def test_live_readers_on_this_process() -> None:
    pid = os.getpid()
    assert read_cpu_seconds(pid) > 0
    assert read_rss(pid) > 1024 * 1024
    assert read_socket_stats().inuse >= 0


def test_raise_file_limit_reaches_hard_limit() -> None:
    limit = raise_file_limit()
    assert limit.after == limit.hard
    assert limit.before <= limit.after


def test_host_cpu_busy_and_total() -> None:
    text = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n"
    assert parse_host_cpu(text) == (160, 980)
    with pytest.raises(ValueError, match="no cpu line"):
        parse_host_cpu("intr 1 2 3\n")


def test_open_files_limit_soft_value() -> None:
    text = (
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            20000                40000                files\n"
    )
    assert parse_open_files_limit(text) == 20000
    unlimited = "Max open files            unlimited            unlimited  files\n"
    assert parse_open_files_limit(unlimited) is None
    assert parse_open_files_limit("Max processes 10 10 processes\n") is None
