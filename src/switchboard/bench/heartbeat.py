"""``heartbeat``: server CPU spent on heartbeats of many idle connections.

The clients connect with the server's default interval (30 seconds), which
sets the server's timeout, and then send heartbeats on their own schedule:
a client may send them more often than the interval in force. Phases:

- **baseline**: every client sends one heartbeat, then none for
  ``--duration`` seconds, or less where the server's heartbeat timeout
  would close the connections first. The server's CPU time meanwhile is the cost of
  holding the connections (timing-wheel ticks and the event loop).
- **one phase per interval**: each client sends a heartbeat every interval,
  from a random point within the first one, so heartbeats arrive evenly.

CPU per heartbeat is (phase CPU - baseline CPU rate x phase time) / echoes
received in the phase. The echo round trip is the time from a client's
heartbeat to the server's echo.
"""

from __future__ import annotations

import array
import random
import time
from typing import Any

from switchboard.bench.charts import Chart, Series
from switchboard.bench.client import FrameClient, Listener
from switchboard.bench.loadgen import (
    WorkerPool,
    WorkerState,
    open_clients,
    sleep_until,
    split,
    worker_count_for,
)
from switchboard.bench.procfs import read_cpu_seconds
from switchboard.bench.report import ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.stats import latency_summary, median
from switchboard.bench.target import BenchError, Target

__all__ = ["run"]

OPEN_TIMEOUT = 900.0
"""Seconds the workers have to open all connections."""
SETTLE = 3.0
"""Seconds between changing the heartbeat schedule and measuring."""


class EchoRecorder(Listener):
    """Counts the echoes one worker's clients receive, and their round trips."""

    def __init__(self) -> None:
        self.start_ns = 0
        self.end_ns = 0
        self.echoes = 0
        self.round_trips: array.array[int] = array.array("q")

    def on_heartbeat(self, client: FrameClient) -> None:
        now = time.monotonic_ns()
        if self.start_ns <= now < self.end_ns and client.heartbeat_sent_at:
            self.echoes += 1
            self.round_trips.append(now - client.heartbeat_sent_at)


# Worker-side functions, run in load-generator processes.


async def set_schedule(state: WorkerState, interval: float | None) -> int:
    """Send one heartbeat now, then one every ``interval`` seconds if given.

    Returns the number of clients still open.
    """
    recorder = state.values.setdefault("echoes", EchoRecorder())
    clients = [client for client in state.clients if client.is_open]
    for client in clients:
        client.listener = recorder
        # A heartbeat now restarts the server's timeout, which the gap after
        # a baseline and a random first delay could otherwise exceed.
        client.cancel_heartbeats()
        client.heartbeat()
        if interval is not None:
            client.schedule_heartbeats(interval, random.uniform(0, interval))
    return len(clients)


async def measure_echoes(
    state: WorkerState, start: float, end: float
) -> dict[str, Any]:
    """Count echoes between two monotonic times; return counts and round trips."""
    recorder: EchoRecorder = state.values["echoes"]
    recorder.start_ns = int(start * 1e9)
    recorder.end_ns = int(end * 1e9)
    recorder.echoes = 0
    recorder.round_trips = array.array("q")
    cpu_before = time.process_time()
    await sleep_until(end)
    return {
        "echoes": recorder.echoes,
        "round_trips": recorder.round_trips.tobytes(),
        "cpu_seconds": time.process_time() - cpu_before,
        "open": sum(1 for client in state.clients if client.is_open),
    }


# The coordinator.


def run(bench: Bench) -> ScenarioResult:
    """Open the connections, then measure the baseline and each interval."""
    args = bench.args
    workers = worker_count_for(args.connections, args.workers)
    bench.workers_used = workers
    with (
        WorkerPool(workers) as pool,
        bench.target(args.connections, {}) as (target, credentials),
    ):
        if target.pid is None:
            raise BenchError(
                "heartbeat needs the server's process id to read its CPU time:"
                " pass --server-pid with --server, or use the embedded server"
            )
        _open(bench, pool, target, credentials)
        # The baseline must end before the server's heartbeat timeout, 1.5
        # intervals after each client's last heartbeat.
        baseline = min(args.duration, 1.5 * target.heartbeat - SETTLE - 5)
        runs = []
        for _ in range(args.runs):
            phases = {"baseline": _phase(bench, pool, target.pid, None, baseline)}
            for interval in args.intervals:
                phases[f"{interval:g}"] = _phase(
                    bench, pool, target.pid, interval, args.duration
                )
            runs.append(_summarise(phases))
        described = target.describe()

    results = {
        "connections": args.connections,
        "medians": _medians(runs),
        "runs": runs,
    }
    return ScenarioResult(
        target=described,
        parameters={
            "connections": args.connections,
            "intervals_s": args.intervals,
            "duration_s": args.duration,
            "transport": args.transport,
            "runs": args.runs,
            "workers": workers,
        },
        results=results,
        headline=_headline(results),
        tables=[_table(results)],
        charts=[_chart(results)],
    )


def _open(
    bench: Bench, pool: WorkerPool, target: Target, credentials: list[Any]
) -> None:
    started = time.monotonic()
    parts = pool.call_all(
        open_clients,
        [
            {
                "credentials": part,
                "endpoints": endpoints_of(target),
                "transport": bench.args.transport,
            }
            for part in split(credentials, len(pool))
        ],
        timeout=OPEN_TIMEOUT,
    )
    failed = sum(part["failed"] for part in parts)
    if failed:
        raise BenchError(f"{failed} of {len(credentials)} connections failed to open")
    bench.log(
        f"{len(credentials)} connections open in {time.monotonic() - started:.1f} s"
    )


def _phase(
    bench: Bench, pool: WorkerPool, pid: int, interval: float | None, duration: float
) -> dict[str, Any]:
    """Apply a heartbeat schedule, then measure server CPU and echoes."""
    pool.call_all(set_schedule, [{"interval": interval}] * len(pool))
    start = time.monotonic() + SETTLE
    end = start + duration
    for index in range(len(pool)):
        pool.submit(index, measure_echoes, start=start, end=end)
    time.sleep(max(0.0, start - time.monotonic()))
    cpu_before = read_cpu_seconds(pid)
    time.sleep(max(0.0, end - time.monotonic()))
    server_cpu = read_cpu_seconds(pid) - cpu_before
    parts = [pool.result(index) for index in range(len(pool))]

    round_trips: array.array[int] = array.array("q")
    for part in parts:
        round_trips.frombytes(part["round_trips"])
    name = "baseline" if interval is None else f"every {interval:g} s"
    bench.log(f"{name}: server CPU {server_cpu / duration:.3f} cores")
    still_open = sum(part["open"] for part in parts)
    if still_open < bench.args.connections:
        raise BenchError(
            f"only {still_open} of {bench.args.connections} connections were"
            f" open after the phase '{name}'; the server closed the others"
        )
    return {
        "interval_s": interval,
        "server_cpu_seconds": server_cpu,
        "echoes": sum(part["echoes"] for part in parts),
        "open_connections": still_open,
        "generator_cpu_cores": sum(part["cpu_seconds"] for part in parts) / duration,
        "echo_round_trip": latency_summary(sorted(round_trips)),
        "duration_s": duration,
    }


def _summarise(phases: dict[str, Any]) -> dict[str, Any]:
    """Add rates and CPU per heartbeat to the phases of one run."""
    baseline = phases["baseline"]
    idle_cores = baseline["server_cpu_seconds"] / baseline["duration_s"]
    for phase in phases.values():
        cores = phase["server_cpu_seconds"] / phase["duration_s"]
        phase["server_cpu_cores"] = cores
        phase["heartbeats_per_second"] = phase["echoes"] / phase["duration_s"]
        extra = (cores - idle_cores) * phase["duration_s"]
        phase["server_cpu_us_per_heartbeat"] = (
            extra / phase["echoes"] * 1e6 if phase["echoes"] else None
        )
        phase["server_cpu_us_per_heartbeat_gross"] = (
            phase["server_cpu_seconds"] / phase["echoes"] * 1e6
            if phase["echoes"]
            else None
        )
    return phases


MEDIAN_FIELDS = (
    "heartbeats_per_second",
    "server_cpu_cores",
    "server_cpu_us_per_heartbeat",
    "server_cpu_us_per_heartbeat_gross",
)


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        name: {
            field: median(run[name][field] for run in runs) for field in MEDIAN_FIELDS
        }
        for name in runs[0]
    }


def _headline(results: dict[str, Any]) -> list[tuple[str, str]]:
    medians = results["medians"]
    runs = len(results["runs"])
    of_runs = f"median of {runs} runs" if runs > 1 else "1 run"
    rows = [
        (
            f"server CPU holding {results['connections']:,} idle connections,"
            " no heartbeats",
            f"{medians['baseline']['server_cpu_cores'] * 100:.1f}% of a core"
            f" ({of_runs})",
        )
    ]
    for name, phase in medians.items():
        if name == "baseline":
            continue
        rows.append(
            (
                f"heartbeat every {name} s: server CPU, per heartbeat above baseline",
                f"{phase['server_cpu_cores'] * 100:.1f}% of a core,"
                f" {_number(phase['server_cpu_us_per_heartbeat'], 1)} µs"
                f" ({phase['heartbeats_per_second']:.0f} heartbeats/s)",
            )
        )
    return rows


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| run | phase | heartbeats/s | server CPU cores | CPU µs per heartbeat"
        " above baseline | CPU µs per heartbeat, all | echo p50 ms | echo p99 ms"
        " | open connections | generator CPU cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, run in enumerate(results["runs"], start=1):
        for name, phase in run.items():
            echo = phase["echo_round_trip"]
            lines.append(
                f"| {index} | {name if name == 'baseline' else f'every {name} s'}"
                f" | {phase['heartbeats_per_second']:.0f}"
                f" | {phase['server_cpu_cores']:.3f}"
                f" | {_number(phase['server_cpu_us_per_heartbeat'], 1)}"
                f" | {_number(phase['server_cpu_us_per_heartbeat_gross'], 1)}"
                f" | {_number(echo['p50_ms'], 2)} | {_number(echo['p99_ms'], 2)}"
                f" | {phase['open_connections']}"
                f" | {phase['generator_cpu_cores']:.3f} |"
            )
    return "\n".join(lines)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _chart(results: dict[str, Any]) -> Chart:
    phases = results["medians"]
    return Chart(
        name="cpu",
        title=f"Server CPU with {results['connections']:,} idle connections",
        x_label="heartbeats per second",
        y_label="server CPU, % of a core",
        series=[
            Series(
                "server",
                [phase["heartbeats_per_second"] for phase in phases.values()],
                [phase["server_cpu_cores"] * 100 for phase in phases.values()],
            )
        ],
    )
