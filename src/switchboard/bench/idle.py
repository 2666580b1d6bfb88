"""``idle``: server memory per idle authenticated connection.

For each transport a new embedded server starts with accounts for the
largest step. The scenario reads the server's VmRSS with no client
connected, then opens authenticated connections in steps (1,000, 5,000 and
15,000 by default) and reads it again after each step has settled. Clients
send a heartbeat every interval in force, spread at random, so that the
server keeps them, and nothing else.

RSS per connection is (RSS at the step - RSS with none) / connections, and
the marginal figure is the growth from the previous step divided by the
connections added. Kernel socket memory is reported separately from
/proc/net/sockstat: it covers the whole host, so both ends of each loopback
connection count, and so do other programs' sockets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from switchboard.bench.accounts import Credential
from switchboard.bench.charts import Chart, Series
from switchboard.bench.loadgen import WorkerPool, open_clients, split, worker_count_for
from switchboard.bench.procfs import read_rss, read_socket_stats
from switchboard.bench.report import Check, ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.target import BenchError, Target

__all__ = ["run"]

TARGET_KIB = {"tcp": 2.0, "ws": 8.0}
"""Targets for server RSS per idle connection, KiB, by transport."""
OPEN_TIMEOUT = 900.0
"""Seconds the workers have to open one step's connections."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Server RSS and host TCP socket figures at one connection count."""

    connections: int
    rss: int
    socket_memory: int
    sockets_in_use: int
    open_seconds: float
    generator_cpu_seconds: float


def _read(
    pid: int, connections: int, seconds: float = 0.0, cpu: float = 0.0
) -> Reading:
    sockets = read_socket_stats()
    return Reading(
        connections=connections,
        rss=read_rss(pid),
        socket_memory=sockets.memory,
        sockets_in_use=sockets.inuse,
        open_seconds=seconds,
        generator_cpu_seconds=cpu,
    )


def _measure(
    bench: Bench,
    pool: WorkerPool,
    target: Target,
    credentials: list[Credential],
    transport: str,
) -> list[Reading]:
    """Open connections step by step; return the baseline and each step."""
    args = bench.args
    pid = target.pid
    if pid is None:
        raise BenchError(
            "idle needs the server's process id to read its memory: pass"
            " --server-pid with --server, or use the embedded server"
        )
    time.sleep(args.settle)
    readings = [_read(pid, 0)]
    opened = 0
    for count in args.connections:
        batch = credentials[opened:count]
        started = time.monotonic()
        parts = pool.call_all(
            open_clients,
            [
                {
                    "credentials": part,
                    "endpoints": endpoints_of(target),
                    "transport": transport,
                }
                for part in split(batch, len(pool))
            ],
            timeout=OPEN_TIMEOUT,
        )
        seconds = time.monotonic() - started
        failed = sum(part["failed"] for part in parts)
        if failed:
            raise BenchError(
                f"{failed} of {len(batch)} connections failed to open; first"
                f" errors: {[error for part in parts for error in part['failures']]}"
            )
        opened = count
        time.sleep(args.settle)
        cpu = sum(part["cpu_seconds"] for part in parts)
        readings.append(_read(pid, count, seconds, cpu))
        bench.log(
            f"{transport}: {count} connections, server RSS"
            f" {readings[-1].rss / 2**20:.1f} MiB"
        )
    return readings


def run(bench: Bench) -> ScenarioResult:
    """Measure each transport on its own server; report RSS per connection."""
    args = bench.args
    largest = args.connections[-1]
    workers = worker_count_for(largest, args.workers)
    bench.workers_used = workers
    by_transport: dict[str, list[Reading]] = {}
    described: dict[str, Any] = {}
    for transport in args.transport:
        with (
            WorkerPool(workers) as pool,
            bench.target(largest, {}) as (target, credentials),
        ):
            described = target.describe()
            by_transport[transport] = _measure(
                bench, pool, target, credentials, transport
            )

    results = {
        transport: _summarise(readings) for transport, readings in by_transport.items()
    }
    return ScenarioResult(
        target=described,
        parameters={
            "connections": args.connections,
            "transports": args.transport,
            "settle_s": args.settle,
            "workers": workers,
        },
        results=results,
        headline=_headline(results),
        checks=_checks(results),
        tables=[_table(results)],
        charts=[_chart(results)],
    )


def _summarise(readings: list[Reading]) -> dict[str, Any]:
    baseline = readings[0]
    steps = []
    previous = baseline
    for reading in readings[1:]:
        added = reading.connections - previous.connections
        steps.append(
            {
                "connections": reading.connections,
                "rss_bytes": reading.rss,
                "rss_per_connection_bytes": (reading.rss - baseline.rss)
                / reading.connections,
                "marginal_rss_per_connection_bytes": (reading.rss - previous.rss)
                / added,
                "socket_memory_bytes": reading.socket_memory,
                "socket_memory_per_connection_bytes": (
                    reading.socket_memory - baseline.socket_memory
                )
                / reading.connections,
                "tcp_sockets_in_use": reading.sockets_in_use,
                "open_seconds": reading.open_seconds,
                "generator_cpu_seconds": reading.generator_cpu_seconds,
            }
        )
        previous = reading
    return {
        "baseline_rss_bytes": baseline.rss,
        "baseline_socket_memory_bytes": baseline.socket_memory,
        "baseline_tcp_sockets_in_use": baseline.sockets_in_use,
        "steps": steps,
    }


def _headline(results: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for transport, result in results.items():
        for step in result["steps"]:
            rows.append(
                (
                    f"server RSS per idle {transport} connection at"
                    f" {step['connections']:,}",
                    f"{step['rss_per_connection_bytes'] / 1024:.2f} KiB"
                    f" (marginal {step['marginal_rss_per_connection_bytes'] / 1024:.2f}"
                    " KiB)",
                )
            )
    return rows


def _checks(results: dict[str, Any]) -> list[Check]:
    checks = []
    for transport, result in results.items():
        largest = result["steps"][-1]
        kib = largest["rss_per_connection_bytes"] / 1024
        limit = TARGET_KIB[transport]
        checks.append(
            Check(
                f"server RSS per idle {transport.upper()} connection, at"
                f" {largest['connections']:,}",
                f"<= {limit:g} KiB",
                f"{kib:.2f} KiB",
                kib <= limit,
            )
        )
    return checks


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| transport | connections | server RSS MiB | RSS KiB per connection"
        " | marginal KiB per connection | host TCP socket memory KiB per connection"
        " | TCP sockets in use | seconds to open the step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for transport, result in results.items():
        lines.append(
            f"| {transport} | 0 | {result['baseline_rss_bytes'] / 2**20:.1f} | | |"
            f" | {result['baseline_tcp_sockets_in_use']} | |"
        )
        for step in result["steps"]:
            lines.append(
                f"| {transport} | {step['connections']:,}"
                f" | {step['rss_bytes'] / 2**20:.1f}"
                f" | {step['rss_per_connection_bytes'] / 1024:.2f}"
                f" | {step['marginal_rss_per_connection_bytes'] / 1024:.2f}"
                f" | {step['socket_memory_per_connection_bytes'] / 1024:.3f}"
                f" | {step['tcp_sockets_in_use']} | {step['open_seconds']:.1f} |"
            )
    lines.extend(
        [
            "",
            "Host TCP socket memory is the `mem` field of /proc/net/sockstat, the"
            " pages of socket buffers in use on the whole host. Both ends of each"
            " loopback connection count, and idle sockets hold almost no buffer,"
            " so the figure stays near zero. The kernel's per-socket structures"
            " are not part of it.",
        ]
    )
    return "\n".join(lines)


def _chart(results: dict[str, Any]) -> Chart:
    return Chart(
        name="rss",
        title="Server RSS against idle connections",
        x_label="authenticated idle connections",
        y_label="server RSS, MiB",
        series=[
            Series(
                transport,
                [0.0] + [float(step["connections"]) for step in result["steps"]],
                [result["baseline_rss_bytes"] / 2**20]
                + [step["rss_bytes"] / 2**20 for step in result["steps"]],
            )
            for transport, result in results.items()
        ],
    )
