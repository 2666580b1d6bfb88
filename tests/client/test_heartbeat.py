"""Adaptive heartbeat policy: probing, stepping back and cooldown."""

from __future__ import annotations

import pytest

from switchboard.client.heartbeat import MAX_COOLDOWN_FACTOR, HeartbeatPolicy


def succeed(policy: HeartbeatPolicy, periods: int) -> list[int]:
    """Report ``periods`` echoed periods; return the intervals probed."""
    probes = []
    for _ in range(periods):
        interval = policy.period_succeeded()
        if interval is not None:
            probes.append(interval)
    return probes


def test_starts_at_server_interval() -> None:
    policy = HeartbeatPolicy()
    assert policy.interval == 0
    assert policy.requested_interval() == 0
    policy.start(30, 600)
    assert policy.interval == 30
    assert policy.good_interval == 30
    assert not policy.probing


def test_probes_after_k_successes() -> None:
    policy = HeartbeatPolicy(probe_after=3, growth=1.5)
    policy.start(30, 600)
    assert policy.period_succeeded() is None
    assert policy.period_succeeded() is None
    assert policy.period_succeeded() == 45
    assert policy.interval == 45
    assert policy.probing
    assert policy.good_interval == 30


def test_successful_probe_becomes_good() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0)
    policy.start(10, 600)
    assert policy.period_succeeded() == 20
    assert policy.period_succeeded() == 40
    assert policy.good_interval == 20
    assert policy.requested_interval() == 20


def test_probing_stops_at_max() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0)
    policy.start(30, 100)
    assert succeed(policy, 10) == [60, 100]
    assert policy.interval == 100
    assert policy.good_interval == 100


def test_idle_failure_steps_back_to_good() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, cooldown=5)
    policy.start(10, 600)
    succeed(policy, 2)  # probes 20 (works), then 40
    assert policy.interval == 40
    policy.connection_lost(idle=True)
    assert policy.interval == 20
    assert policy.good_interval == 20
    assert not policy.probing


def test_no_probe_during_cooldown() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, cooldown=3)
    policy.start(10, 600)
    succeed(policy, 1)  # probes 20
    policy.connection_lost(idle=True)
    assert policy.interval == 10
    assert succeed(policy, 3) == []
    assert succeed(policy, 1) == [20]


def pauses_between_failed_probes(policy: HeartbeatPolicy, probes: int) -> list[int]:
    """Fail ``probes`` probes in a row; return the periods waited before each next."""
    pauses = []
    for _ in range(probes):
        assert succeed(policy, 1) == [20]  # probe
        policy.connection_lost(idle=True)  # and fail
        pause = 0
        while policy.period_succeeded() is None:
            pause += 1
        pauses.append(pause)
        policy.connection_lost(idle=False)  # abandon the probe just made
        policy.start(10, 600)
    return pauses


def test_repeated_failed_probes_double_cooldown() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, cooldown=2)
    policy.start(10, 600)
    assert pauses_between_failed_probes(policy, 4) == [2, 4, 8, 16]


def test_cooldown_is_capped() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, cooldown=1)
    policy.start(10, 600)
    pauses = pauses_between_failed_probes(policy, 10)
    assert pauses == [1, 2, 4, 8, 16, 32, 64, 64, 64, 64]
    assert max(pauses) == MAX_COOLDOWN_FACTOR


def test_successful_probe_resets_cooldown() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0, cooldown=2)
    policy.start(10, 100)
    succeed(policy, 1)  # probes 20
    policy.connection_lost(idle=True)  # fails: pause 2, next pause 4
    succeed(policy, 2)
    assert succeed(policy, 1) == [20]
    assert succeed(policy, 1) == [40]  # 20 worked: pause back to 2
    policy.connection_lost(idle=True)
    assert succeed(policy, 2) == []
    assert succeed(policy, 1) == [40]


def test_busy_failure_changes_nothing() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0)
    policy.start(10, 600)
    succeed(policy, 1)  # probes 20
    policy.connection_lost(idle=False)
    assert policy.interval == 20
    assert policy.good_interval == 10


def test_failure_at_proven_interval_shrinks_it() -> None:
    policy = HeartbeatPolicy(probe_after=100, growth=2.0, min_interval=5)
    policy.start(30, 600)
    policy.period_succeeded()
    policy.connection_lost(idle=True)
    assert policy.good_interval == 15
    assert policy.interval == 15


def test_shrinking_stops_at_min_interval() -> None:
    policy = HeartbeatPolicy(probe_after=100, growth=2.0, min_interval=5)
    policy.start(6, 600)
    policy.connection_lost(idle=True)
    assert policy.interval == 5


def test_reconnect_keeps_learned_interval() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0)
    policy.start(10, 600)
    succeed(policy, 2)  # 20 works, probing 40
    policy.connection_lost(idle=False)
    assert policy.requested_interval() == 20
    policy.start(20, 600)
    assert policy.interval == 20
    assert policy.good_interval == 20


def test_server_clamp_lowers_good_interval() -> None:
    policy = HeartbeatPolicy(probe_after=1, growth=2.0)
    policy.start(30, 600)
    policy.period_succeeded()  # requests 60
    policy.applied(45)
    assert policy.interval == 45
    policy.start(20, 20)  # the server now allows less
    assert policy.interval == 20
    assert policy.good_interval == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probe_after": 0}, "probe_after"),
        ({"growth": 1.0}, "growth"),
        ({"cooldown": -1}, "cooldown"),
    ],
)
def test_invalid_settings_raise(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeartbeatPolicy(**kwargs)  # type: ignore[arg-type]
