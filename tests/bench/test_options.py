"""Command-line options of ``switchboard bench``."""

from __future__ import annotations

import argparse

import pytest

from switchboard.bench.options import parse_counts, parse_rates, parse_transports
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
