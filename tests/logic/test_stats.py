"""Statistics: a process's own counters, or a cluster's shared totals."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from switchboard.bus.base import GatewayLoad
from switchboard.ids import UserId
from switchboard.logic.stats import CounterTotals, Stats


def samples(stats: Stats) -> dict[str, float]:
    text = stats.metrics_text().decode()
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_own_counters_are_reported() -> None:
    stats = Stats()
    stats.messages_sent = 2
    stats.count_error("invalid_message")

    figures = samples(stats)

    assert figures["switchboard_messages_sent_total[]"] == 2
    assert figures["switchboard_errors_total[('code', 'invalid_message')]"] == 1
    assert stats.snapshot()["messages_sent"] == 2


def test_shared_totals_replace_own_counters() -> None:
    stats = Stats()
    stats.messages_sent = 2
    stats.shared = CounterTotals(
        messages_sent=40, messages_delivered=30, syncs=7, errors={"rate_limited": 3}
    )

    figures = samples(stats)
    snapshot = stats.snapshot()

    assert figures["switchboard_messages_sent_total[]"] == 40
    assert figures["switchboard_messages_delivered_total[]"] == 30
    assert figures["switchboard_syncs_total[]"] == 7
    assert figures["switchboard_errors_total[('code', 'rate_limited')]"] == 3
    assert snapshot["messages_sent"] == 40
    assert snapshot["errors"] == {"rate_limited": 3}
    assert stats.own_counters().messages_sent == 2


def test_history_samples_shared_totals() -> None:
    stats = Stats(interval=1.0)
    stats.shared = CounterTotals(messages_sent=10)
    stats.sample(0)
    stats.shared = CounterTotals(messages_sent=30)
    stats.sample(0)

    history = stats.snapshot()["history"]

    assert len(history) == 1
    assert history[0]["sent_per_second"] > 0


def test_gateway_process_figures_come_from_its_report() -> None:
    stats = Stats()
    stats.gateways = [
        GatewayLoad("gw-a", "a:7070", {1: 2}, {UserId(1), UserId(2)}, False, 12.5, 99),
        GatewayLoad("gw-b", "b:7070", {1: 1}, {UserId(2)}, False),
    ]

    snapshot = stats.snapshot()

    first, second = snapshot["gateways"]
    assert first["cpu_percent"] == 12.5
    assert first["rss_bytes"] == 99
    # A gateway in this process reports this process's figures.
    assert second["rss_bytes"] > 99
    assert snapshot["active_users"] == 2
