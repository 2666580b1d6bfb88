"""Command-line options of ``switchboard bench``."""

from __future__ import annotations

import argparse

import pytest

from switchboard.bench.options import (
    parse_counts,
    parse_fanout_modes,
    parse_numbers,
    parse_rates,
    parse_transports,
)
from switchboard.cli.main import build_parser


def test_counts_ascending() -> None:
    assert parse_counts("1000,5000,15000") == [1000, 5000, 15000]


@pytest.mark.parametrize("text", ["", "0", "5000,1000", "10,x", "-1"])
def test_counts_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid list"):
        parse_counts(text)


def test_rates_with_half() -> None:
    assert parse_rates("half,1000") == ["half", 1000.0]


@pytest.mark.parametrize("text", ["0", "fast", "half,-5"])
def test_rates_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid rate"):
        parse_rates(text)


def test_numbers_above_zero() -> None:
    assert parse_numbers("30,0.5") == [30.0, 0.5]
    for text in ("", "0", "5,-1", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid list"):
            parse_numbers(text)


def test_fanout_modes_deduplicated() -> None:
    assert parse_fanout_modes("read,write,read") == ["read", "write"]
    with pytest.raises(argparse.ArgumentTypeError, match="invalid mode list"):
        parse_fanout_modes("both")


def test_transports_deduplicated() -> None:
    assert parse_transports("ws,tcp,ws") == ["ws", "tcp"]
    with pytest.raises(argparse.ArgumentTypeError, match="invalid transport"):
        parse_transports("udp")


def test_bench_parser_defaults() -> None:
    args = build_parser().parse_args(["bench", "direct"])
    assert args.scenario == "direct"
    assert args.bench_server is None
    assert args.rate == ["half", 1000.0]
    assert args.runs == 3


def test_each_scenario_keeps_its_runs_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench", "storm"]).runs == 3
    assert parser.parse_args(["bench", "heartbeat", "--runs", "2"]).runs == 2
    assert parser.parse_args(["bench", "direct"]).runs == 3
    # wire and idle measure once: bytes and memory hardly vary between runs.
    assert not hasattr(parser.parse_args(["bench", "wire"]), "runs")
    assert parser.parse_args(["bench", "fanout"]).sizes == [100, 1000, 10_000]
    assert parser.parse_args(["bench", "heartbeat"]).intervals == [30.0, 5.0]
