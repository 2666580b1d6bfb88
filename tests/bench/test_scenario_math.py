"""Arithmetic of the fanout and storm scenarios, without a server."""

from __future__ import annotations

import array

from switchboard.bench.fanout import _message_count, _online_count
from switchboard.bench.storm import _summarise


def test_fanout_small_groups_get_more_messages() -> None:
    assert _message_count(20, 100) == 200
    assert _message_count(20, 1000) == 20
    assert _message_count(20, 10_000) == 20


def test_fanout_online_fraction() -> None:
    assert _online_count(100, 0.1) == 10
    assert _online_count(10_000, 0.1) == 1000
    assert _online_count(2, 0.1) == 1


def test_storm_splits_control_latencies() -> None:
    at = 100.0
    back = array.array("q", [int(0.5e9), int(2e9)])
    lag = array.array("q", [int(1e6), int(3e6)])
    part = {
        "back": back.tobytes(),
        "lag": lag.tobytes(),
        "cpu_seconds": 0.5,
        "attempts": 3,
        "gave_up": 0,
        "short_pages": 0,
    }
    control = [
        (int(99e9), 1_000_000),  # before the drop
        (int(101e9), 50_000_000),  # during the storm
        (int(103e9), 9_000_000),  # after the last client was back
    ]

    summary = _summarise([part], control, at, server_cpu=1.5)

    assert summary["clients_back"] == 2
    assert summary["all_back_s"] == 2.0
    assert summary["control_before"]["count"] == 1
    assert summary["control_before"]["max_ms"] == 1.0
    assert summary["control_during"]["count"] == 1
    assert summary["control_during"]["max_ms"] == 50.0
    assert summary["lag_behind_schedule"]["max_ms"] == 3.0
