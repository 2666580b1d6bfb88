"""``direct``: 1:1 message throughput, server CPU per message, and latency.

N pairs of clients, each a sender and a recipient on their own connection,
exchange messages over one server. Each sender keeps at most ``--window``
messages unacknowledged. A body starts with the 19-digit
``time.monotonic_ns()`` at which it was sent, so the recipient computes the
end-to-end latency (Send written to Message read) on the same clock. The
recipient reports its cursor with one Cursor frame per read, as the
protocol's clients do.

Each run has these phases:

- **saturation**: every sender refills its window as soon as a SendAck
  arrives. The delivered messages per second over the measured time are the
  saturation rate. Server CPU (utime + stime of the server process, all
  threads) over the same time, divided by the messages delivered, is the
  CPU per message.
- **offered load**, for each ``--rate``: senders send on a fixed schedule,
  spread evenly over the pairs. A message that finds its sender's window
  full waits, and its latency counts from its scheduled time, so a slow
  server cannot hide queueing (no coordinated omission).
"""

from __future__ import annotations

import array
import asyncio
import heapq
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from switchboard.bench.accounts import Credential
from switchboard.bench.charts import Chart, Series
from switchboard.bench.client import Endpoints, FrameClient, Listener, open_client
from switchboard.bench.loadgen import (
    CONNECT_TIMEOUT,
    Monitor,
    WorkerPool,
    WorkerState,
    count_errors,
    sleep_until,
    split,
    worker_count_for,
)
from switchboard.bench.procfs import read_cpu_seconds
from switchboard.bench.report import Check, ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.stats import latency_summary, median, percentile
from switchboard.bench.target import BenchError
from switchboard.protocol import pb
from switchboard.protocol.frames import encode

__all__ = ["run"]

logger = logging.getLogger("switchboard.bench")

TIMESTAMP_DIGITS = 19
"""Digits of the send time at the start of each body: a monotonic_ns value."""
DRAIN_TIMEOUT = 15.0
"""Seconds a phase waits after its end for messages still in flight."""
START_DELAY = 0.3
"""Seconds between the coordinator's start signal and the phase start."""
GENERATOR_BUSY = 0.8
"""CPU cores one worker may use before it may be the bottleneck."""


@dataclass(slots=True)
class Pair:
    """A sender and a recipient connection, and the sender's window."""

    sender: FrameClient
    recipient: FrameClient
    to: int
    next_client_id: int = 1
    in_flight: int = 0
    sent_at: dict[int, int] = field(default_factory=dict)
    """Body timestamp of each unacknowledged message, by client_id."""
    backlog: deque[int] = field(default_factory=deque)
    """Scheduled times of messages waiting for a free window slot."""
    outgoing: list[bytes] = field(default_factory=list)
    cursor_sent: int = 0


@dataclass(slots=True)
class Phase:
    """Counters and samples of one phase in one worker."""

    window: int
    body_size: int
    measure_start: int
    """monotonic_ns() at which measurement starts."""
    measure_end: int
    closed_loop: bool
    sending: bool = True
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    delivered_in_window: int = 0
    errors: int = 0
    latencies: array.array[int] = field(default_factory=lambda: array.array("q"))
    ack_latencies: array.array[int] = field(default_factory=lambda: array.array("q"))
    lateness: array.array[int] = field(default_factory=lambda: array.array("q"))
    """How late the generator sent scheduled messages, for offered load."""

    def in_window(self, moment: int) -> bool:
        return self.measure_start <= moment < self.measure_end


class DirectWorker:
    """The pairs of one worker process and the phase they run."""

    def __init__(self) -> None:
        self.pairs: list[Pair] = []
        self.phase: Phase | None = None

    def send(self, pair: Pair, stamp: int) -> None:
        """Queue a Send on ``pair`` whose body carries ``stamp``."""
        phase = self.phase
        assert phase is not None
        client_id = pair.next_client_id
        pair.next_client_id += 1
        body = b"%019d" % stamp
        body = body.ljust(phase.body_size, b".")
        pair.outgoing.append(
            encode(pb.Send(to=pair.to, client_id=client_id, body=body))
        )
        pair.sent_at[client_id] = stamp
        pair.in_flight += 1
        phase.sent += 1

    def flush(self, pair: Pair) -> None:
        if pair.outgoing:
            pair.sender.write(b"".join(pair.outgoing))
            pair.outgoing.clear()


class SenderListener(Listener):
    def __init__(self, worker: DirectWorker, pair: Pair) -> None:
        self.worker = worker
        self.pair = pair

    def on_send_ack(self, client: FrameClient, ack: pb.SendAck) -> None:
        self._settle(ack.client_id)

    def on_error(self, client: FrameClient, error: pb.Error) -> None:
        if error.client_id:
            phase = self.worker.phase
            if phase is not None:
                phase.errors += 1
            self._settle(error.client_id, acked=False)

    def _settle(self, client_id: int, acked: bool = True) -> None:
        pair, phase = self.pair, self.worker.phase
        stamp = pair.sent_at.pop(client_id, None)
        if stamp is None or phase is None:
            return
        pair.in_flight -= 1
        if acked:
            phase.acked += 1
            if phase.in_window(stamp):
                phase.ack_latencies.append(time.monotonic_ns() - stamp)
        if pair.backlog:
            self.worker.send(pair, pair.backlog.popleft())
        elif phase.closed_loop and phase.sending:
            self.worker.send(pair, time.monotonic_ns())

    def after_batch(self, client: FrameClient) -> None:
        self.worker.flush(self.pair)


class RecipientListener(Listener):
    def __init__(self, worker: DirectWorker, pair: Pair) -> None:
        self.worker = worker
        self.pair = pair

    def on_message(self, client: FrameClient, message: pb.Message) -> None:
        phase = self.worker.phase
        if phase is None:
            return
        now = time.monotonic_ns()
        stamp = int(message.body[:TIMESTAMP_DIGITS])
        phase.delivered += 1
        if phase.in_window(stamp):
            phase.latencies.append(now - stamp)
        if phase.in_window(now):
            phase.delivered_in_window += 1

    def after_batch(self, client: FrameClient) -> None:
        pair = self.pair
        if client.head_seq > pair.cursor_sent:
            pair.cursor_sent = client.head_seq
            client.send(pb.Cursor(seq=client.head_seq))


# Worker-side functions, run in load-generator processes.


async def open_pairs(
    state: WorkerState,
    pairs: list[tuple[Credential, Credential]],
    endpoints: Endpoints,
    transport: str,
) -> int:
    """Connect both clients of each pair; return the number of pairs."""
    worker = DirectWorker()
    state.values["direct"] = worker

    async def open_pair(sender: Credential, recipient: Credential) -> None:
        sender_client = await open_client(sender, endpoints, transport)
        recipient_client = await open_client(recipient, endpoints, transport)
        pair = Pair(sender_client, recipient_client, recipient.user_id)
        sender_client.listener = SenderListener(worker, pair)
        recipient_client.listener = RecipientListener(worker, pair)
        for client in (sender_client, recipient_client):
            interval = client.connected.result().heartbeat
            client.schedule_heartbeats(interval, random.uniform(0, interval))
        state.clients.extend((sender_client, recipient_client))
        worker.pairs.append(pair)

    async with asyncio.timeout(CONNECT_TIMEOUT * 2):
        await asyncio.gather(*(open_pair(*pair) for pair in pairs))
    return len(worker.pairs)


async def run_phase(
    state: WorkerState,
    start_at: float,
    warmup: float,
    duration: float,
    window: int,
    body_size: int,
    rate_per_pair: float | None,
) -> dict[str, Any]:
    """Run one phase on this worker's pairs; return counters and samples.

    ``rate_per_pair`` None runs the closed loop (saturation); otherwise each
    pair sends that many messages per second on a fixed schedule.
    """
    worker: DirectWorker = state.values["direct"]
    measure_start = start_at + warmup
    measure_end = measure_start + duration
    phase = Phase(
        window=window,
        body_size=body_size,
        measure_start=int(measure_start * 1e9),
        measure_end=int(measure_end * 1e9),
        closed_loop=rate_per_pair is None,
    )
    worker.phase = phase
    await sleep_until(start_at)
    if rate_per_pair is None:
        for pair in worker.pairs:
            for _ in range(window):
                worker.send(pair, time.monotonic_ns())
            worker.flush(pair)
        schedule = None
    else:
        schedule = asyncio.create_task(
            _send_on_schedule(worker, phase, rate_per_pair, int(measure_end * 1e9))
        )

    await sleep_until(measure_start)
    cpu_start = time.process_time()
    await sleep_until(measure_end)
    cpu_seconds = time.process_time() - cpu_start
    phase.sending = False
    if schedule is not None:
        await schedule
    drained = await _drain(worker, phase)
    worker.phase = None
    return {
        "sent": phase.sent,
        "acked": phase.acked,
        "delivered": phase.delivered,
        "delivered_in_window": phase.delivered_in_window,
        "errors": phase.errors,
        "drained": drained,
        "cpu_seconds": cpu_seconds,
        "latencies": phase.latencies.tobytes(),
        "ack_latencies": phase.ack_latencies.tobytes(),
        "lateness": phase.lateness.tobytes(),
    }


async def _send_on_schedule(
    worker: DirectWorker, phase: Phase, rate_per_pair: float, end: int
) -> None:
    # One timer for all pairs: a heap of (next send time, pair index).
    period = int(1e9 / rate_per_pair)
    start = time.monotonic_ns()
    heap = [
        (start + random.randrange(period), index) for index in range(len(worker.pairs))
    ]
    heapq.heapify(heap)
    while heap:
        now = time.monotonic_ns()
        touched = set()
        while heap and heap[0][0] <= now:
            scheduled, index = heapq.heappop(heap)
            if scheduled >= end:
                continue
            pair = worker.pairs[index]
            if pair.in_flight < phase.window:
                # The timer fires up to a millisecond late (uvloop's clock
                # resolution): stamp the real send time, and record the delay.
                if phase.in_window(scheduled):
                    phase.lateness.append(now - scheduled)
                worker.send(pair, now)
            else:
                pair.backlog.append(scheduled)
            touched.add(index)
            heapq.heappush(heap, (scheduled + period, index))
        for index in touched:
            worker.flush(worker.pairs[index])
        if heap:
            await asyncio.sleep(max(0, heap[0][0] - time.monotonic_ns()) / 1e9)


async def _drain(worker: DirectWorker, phase: Phase) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        backlog = sum(len(pair.backlog) + pair.in_flight for pair in worker.pairs)
        if backlog == 0 and phase.delivered >= phase.acked:
            return True
        await asyncio.sleep(0.05)
    return False


# The coordinator.


def run(bench: Bench) -> ScenarioResult:
    args = bench.args
    if args.body_size < TIMESTAMP_DIGITS:
        raise BenchError(
            f"invalid --body-size {args.body_size}: at least {TIMESTAMP_DIGITS}"
            " bytes are needed for the timestamp"
        )
    workers = worker_count_for(2 * args.pairs, args.workers)
    bench.workers_used = workers
    with (
        WorkerPool(workers) as pool,
        bench.target(2 * args.pairs, {}) as (
            target,
            credentials,
        ),
    ):
        monitor = Monitor(target.pid)
        monitor.start()
        started = time.monotonic()
        try:
            pairs = list(zip(credentials[0::2], credentials[1::2], strict=True))
            opened = pool.call_all(
                open_pairs,
                [
                    {
                        "pairs": part,
                        "endpoints": endpoints_of(target),
                        "transport": args.transport,
                    }
                    for part in split(pairs, workers)
                ],
            )
            bench.log(f"{sum(opened)} pairs connected over {args.transport}")
            runs = [
                _run_once(bench, pool, target.pid, index) for index in range(args.runs)
            ]
            errors = pool.call_all(count_errors, [{}] * workers)
        finally:
            monitor.stop()
        described = target.describe()
    return _result(bench, described, runs, errors, monitor, started)


def _run_once(
    bench: Bench, pool: WorkerPool, pid: int | None, index: int
) -> dict[str, Any]:
    args = bench.args
    phases: dict[str, Any] = {}
    if "half" in args.rate:
        phases["saturation"] = _phase(bench, pool, pid, None)
        bench.log(
            f"run {index + 1}: saturation"
            f" {phases['saturation']['delivered_per_second']:.0f} messages/s"
        )
    for rate in args.rate:
        if rate == "half":
            offered = phases["saturation"]["delivered_per_second"] / 2
            name = "half"
        else:
            offered = float(rate)
            name = f"{offered:g}"
        phases[name] = _phase(bench, pool, pid, offered)
        bench.log(
            f"run {index + 1}: {offered:.0f} messages/s offered, p99"
            f" {phases[name]['latency']['p99_ms']} ms"
        )
    return phases


def _phase(
    bench: Bench, pool: WorkerPool, pid: int | None, offered: float | None
) -> dict[str, Any]:
    args = bench.args
    start_at = time.monotonic() + START_DELAY
    measure_start = start_at + args.warmup
    measure_end = measure_start + args.duration
    rate_per_pair = None if offered is None else offered / args.pairs
    for index in range(len(pool)):
        pool.submit(
            index,
            run_phase,
            start_at=start_at,
            warmup=args.warmup,
            duration=args.duration,
            window=args.window,
            body_size=args.body_size,
            rate_per_pair=rate_per_pair,
        )
    cpu = _server_cpu(pid, measure_start, measure_end)
    parts = [pool.result(index) for index in range(len(pool))]
    phase = _combine(parts, offered, cpu, args.duration)
    if phase["generator_busiest_worker_cores"] > GENERATOR_BUSY:
        logger.warning(
            "a load generator worker used %.2f CPU cores; it may limit the"
            " result, so run again with more --workers",
            phase["generator_busiest_worker_cores"],
        )
    return phase


def _server_cpu(pid: int | None, start: float, end: float) -> float | None:
    if pid is None:
        return None
    time.sleep(max(0.0, start - time.monotonic()))
    before = read_cpu_seconds(pid)
    time.sleep(max(0.0, end - time.monotonic()))
    return read_cpu_seconds(pid) - before


def _combine(
    parts: list[dict[str, Any]],
    offered: float | None,
    server_cpu: float | None,
    duration: float,
) -> dict[str, Any]:
    def samples(key: str) -> list[int]:
        values: array.array[int] = array.array("q")
        for part in parts:
            values.frombytes(part[key])
        return sorted(values)

    delivered = sum(part["delivered_in_window"] for part in parts)
    generator_cpu = sum(part["cpu_seconds"] for part in parts)
    busiest_worker = max(part["cpu_seconds"] for part in parts) / duration
    latencies = samples("latencies")
    return {
        "offered_per_second": offered,
        "delivered_per_second": delivered / duration,
        "messages": {
            key: sum(part[key] for part in parts)
            for key in ("sent", "acked", "delivered", "errors")
        },
        "all_drained": all(part["drained"] for part in parts),
        "server_cpu_cores": None if server_cpu is None else server_cpu / duration,
        "server_cpu_us_per_message": (
            None
            if server_cpu is None or not delivered
            else server_cpu / delivered * 1e6
        ),
        "generator_cpu_cores": generator_cpu / duration,
        "generator_busiest_worker_cores": busiest_worker,
        "generator_cpu_us_per_message": (
            generator_cpu / delivered * 1e6 if delivered else None
        ),
        "latency": latency_summary(latencies),
        "ack_latency": latency_summary(samples("ack_latencies")),
        "generator_lateness": latency_summary(samples("lateness")),
        "latency_curve_ms": _curve(latencies),
    }


CURVE_POINTS = (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999)


def _curve(latencies: list[int]) -> dict[str, float]:
    if not latencies:
        return {}
    return {
        f"{fraction * 100:g}": round(percentile(latencies, fraction) / 1e6, 4)
        for fraction in CURVE_POINTS
    }


def _result(
    bench: Bench,
    described: dict[str, Any],
    runs: list[dict[str, Any]],
    errors: list[dict[str, int]],
    monitor: Monitor,
    started: float,
) -> ScenarioResult:
    args = bench.args
    medians = {
        name: {
            "delivered_per_second": median(
                run[name]["delivered_per_second"] for run in runs
            ),
            "server_cpu_us_per_message": median(
                run[name]["server_cpu_us_per_message"] for run in runs
            ),
            "generator_cpu_cores": median(
                run[name]["generator_cpu_cores"] for run in runs
            ),
            "offered_per_second": median(
                run[name]["offered_per_second"] for run in runs
            ),
            **{
                f"latency_{key}": median(run[name]["latency"][key] for run in runs)
                for key in ("p50_ms", "p99_ms", "p999_ms")
            },
        }
        for name in runs[0]
    }
    error_totals: dict[str, int] = {}
    for part in errors:
        for code, count in part.items():
            error_totals[code] = error_totals.get(code, 0) + count
    return ScenarioResult(
        target=described,
        parameters={
            "pairs": args.pairs,
            "window": args.window,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rates": args.rate,
            "body_size": args.body_size,
            "transport": args.transport,
            "runs": args.runs,
        },
        results={"medians": medians, "runs": runs, "error_frames": error_totals},
        headline=_headline(medians, len(runs)),
        checks=_checks(medians),
        tables=[_table(runs)],
        charts=_charts(runs, monitor, started),
    )


def _headline(medians: dict[str, Any], runs: int) -> list[tuple[str, str]]:
    rows = []
    of_runs = f"median of {runs} runs" if runs > 1 else "1 run"
    saturation = medians.get("saturation")
    if saturation is not None:
        rows.append(
            (
                "saturation throughput",
                f"{saturation['delivered_per_second']:.0f} messages/s ({of_runs})",
            )
        )
        cpu = saturation["server_cpu_us_per_message"]
        rows.append(
            (
                "server CPU per delivered message",
                "unknown (no server pid)" if cpu is None else f"{cpu:.1f} µs",
            )
        )
        rows.append(
            (
                "latency at saturation p50 / p99 / p99.9",
                _latencies(saturation),
            )
        )
    for name, phase in medians.items():
        if name == "saturation":
            continue
        rows.append(
            (
                f"latency at {phase['offered_per_second']:.0f} messages/s"
                f"{' (half saturation)' if name == 'half' else ''} p50 / p99 / p99.9",
                _latencies(phase),
            )
        )
    return rows


def _checks(medians: dict[str, Any]) -> list[Check]:
    """Compare the medians with the targets for 1:1 messages."""
    checks = []
    saturation = medians.get("saturation")
    if saturation is not None:
        cpu = saturation["server_cpu_us_per_message"]
        checks.append(
            Check(
                "server CPU per delivered stored 1:1 message, at saturation",
                "<= 25 µs",
                "unknown" if cpu is None else f"{cpu:.1f} µs",
                None if cpu is None else cpu <= 25,
            )
        )
    for name, label, limit in (
        ("half", "p99 latency at half the saturation rate", 5.0),
        ("1000", "p99 latency at 1,000 messages/s offered", 1.0),
    ):
        phase = medians.get(name)
        if phase is None:
            continue
        p99 = phase["latency_p99_ms"]
        checks.append(
            Check(
                label,
                f"<= {limit:g} ms",
                "no message delivered" if p99 is None else f"{p99:.2f} ms",
                None if p99 is None else p99 <= limit,
            )
        )
    return checks


def _latencies(phase: dict[str, Any]) -> str:
    values = [phase[f"latency_{key}"] for key in ("p50_ms", "p99_ms", "p999_ms")]
    return (
        " / ".join("-" if value is None else f"{value:.2f}" for value in values) + " ms"
    )


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| run | phase | offered msg/s | delivered msg/s | server CPU µs/msg"
        " | server CPU cores | generator CPU cores (busiest worker)"
        " | p50 ms | p99 ms | p99.9 ms | max ms | SendAck p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, run in enumerate(runs, start=1):
        for name, phase in run.items():
            latency = phase["latency"]
            lines.append(
                f"| {index} | {name} | {_number(phase['offered_per_second'], 0)}"
                f" | {phase['delivered_per_second']:.0f}"
                f" | {_number(phase['server_cpu_us_per_message'], 1)}"
                f" | {_number(phase['server_cpu_cores'], 2)}"
                f" | {phase['generator_cpu_cores']:.2f}"
                f" ({phase['generator_busiest_worker_cores']:.2f})"
                f" | {_number(latency['p50_ms'], 2)} | {_number(latency['p99_ms'], 2)}"
                f" | {_number(latency['p999_ms'], 2)} | {_number(latency['max_ms'], 2)}"
                f" | {_number(phase['ack_latency']['p99_ms'], 2)} |"
            )
    return "\n".join(lines)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _charts(
    runs: list[dict[str, Any]], monitor: Monitor, started: float
) -> list[Chart]:
    last = runs[-1]
    labels = [f"p{point * 100:g}" for point in CURVE_POINTS]
    charts = [
        Chart(
            name="latency",
            title="End-to-end latency percentiles (last run)",
            x_label="percentile",
            y_label="milliseconds",
            bars=True,
            log_y=True,
            series=[
                Series(
                    name,
                    labels,
                    [
                        phase["latency_curve_ms"].get(f"{p * 100:g}", 0.0)
                        for p in CURVE_POINTS
                    ],
                )
                for name, phase in last.items()
                if phase["latency_curve_ms"]
            ],
        )
    ]
    timeline = list(monitor.timeline(started))
    if timeline:
        charts.append(
            Chart(
                name="server-cpu",
                title="Server CPU during the runs",
                x_label="seconds",
                y_label="CPU cores busy",
                series=[
                    Series(
                        "server",
                        [point[0] for point in timeline],
                        [point[1] for point in timeline],
                    )
                ],
            )
        )
    return charts
