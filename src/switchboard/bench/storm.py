"""``storm``: many clients reconnecting at once, and latency meanwhile.

``--clients`` clients connect, spread over at least two load-generator
processes, and each receives ``--missed`` messages from a filler account.
A control pair in the coordinator then sends ``--control-rate`` messages
per second to each other for the whole run. Each run:

1. Every storm client drops its connection at the same moment with a TCP
   reset, as when a phone loses its network.
2. Each reconnects after a delay drawn uniformly from [0, ``--spread``),
   with ``last_seq`` set ``--missed`` entries below its cursor, so that the
   server's Connected carries exactly those entries. A failed attempt is
   retried with capped exponential backoff.
3. A client is back once its Connected has arrived with every missed entry.

The run reports the time from the drop until the last client is back, each
client's lag behind its scheduled reconnect, and the control pair's
end-to-end latency before and during the storm.
"""

from __future__ import annotations

import array
import asyncio
import random
import time
from typing import Any

from switchboard.bench.accounts import Credential
from switchboard.bench.charts import Chart, Series
from switchboard.bench.client import (
    ConnectFailed,
    Endpoints,
    FrameClient,
    Listener,
    open_client,
)
from switchboard.bench.loadgen import (
    WorkerPool,
    WorkerState,
    open_clients,
    sleep_until,
    split,
    worker_count_for,
)
from switchboard.bench.procfs import read_cpu_seconds
from switchboard.bench.report import Check, ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.stats import latency_summary, median
from switchboard.bench.target import BenchError, Target
from switchboard.protocol import pb

__all__ = ["run"]

ATTEMPT_TIMEOUT = 10.0
"""Seconds one reconnect attempt may take before it counts as failed."""
BACKOFF_CAP = 2.0
"""Maximum wait between two reconnect attempts of one client, seconds."""
CONTROL_BEFORE = 2.0
"""Seconds the control pair runs before the storm, for its baseline."""
CONTROL_AFTER = 1.0
"""Seconds the control pair runs after the last client is back."""
FILL_WINDOW = 200
"""Filler messages sent before waiting for their SendAcks."""
TARGET_CONTROL_P99_MS = 100.0
SPREAD_TOLERANCE = 1.05
"""The last client may be back 5% after the spread window and still count
as back within it: its own connect and sync take a moment."""


# Worker-side functions, run in load-generator processes.


async def count_caught_up(state: WorkerState, minimum: int) -> int:
    """Return how many open clients hold at least ``minimum`` inbox entries."""
    return sum(
        1 for client in state.clients if client.is_open and client.head_seq >= minimum
    )


async def drop_and_reconnect(
    state: WorkerState,
    at: float,
    spread: float,
    missed: int,
    seconds: float,
    endpoints: Endpoints,
    transport: str,
) -> dict[str, Any]:
    """Reset every connection at ``at``, then reconnect each within ``spread``.

    Gives up on a client ``seconds`` after ``at``. Returns, as arrays of
    nanoseconds, each client's time back after ``at`` and its lag behind its
    scheduled reconnect, plus counts of failures.
    """
    old_clients = list(state.clients)
    state.clients.clear()
    back: array.array[int] = array.array("q")
    lag: array.array[int] = array.array("q")
    counts = {"attempts": 0, "gave_up": 0, "short_pages": 0}
    cpu_before = time.process_time()
    await sleep_until(at)
    for client in old_clients:
        client.abort()

    async def reconnect(old: FrameClient) -> None:
        scheduled = at + random.uniform(0, spread)
        await sleep_until(scheduled)
        last_seq = max(0, old.head_seq - missed)
        attempt = 0
        while time.monotonic() < at + seconds:
            counts["attempts"] += 1
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    client = await open_client(
                        old.credential, endpoints, transport, last_seq=last_seq
                    )
            except (ConnectFailed, OSError, TimeoutError):
                attempt += 1
                await asyncio.sleep(
                    random.uniform(0, min(BACKOFF_CAP, 0.1 * 2**attempt))
                )
                continue
            now = time.monotonic()
            page = client.connected.result().sync
            if len(page.messages) < min(missed, old.head_seq):
                counts["short_pages"] += 1
            back.append(int((now - at) * 1e9))
            lag.append(int((now - scheduled) * 1e9))
            interval = client.connected.result().heartbeat
            client.schedule_heartbeats(interval, random.uniform(0, interval))
            state.clients.append(client)
            return
        counts["gave_up"] += 1

    await asyncio.gather(*(reconnect(client) for client in old_clients))
    return {
        "back": back.tobytes(),
        "lag": lag.tobytes(),
        "cpu_seconds": time.process_time() - cpu_before,
        **counts,
    }


# The control pair, in the coordinator.


class ControlRecipient(Listener):
    """Records (send time, latency) of each control message, in nanoseconds."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, int]] = []

    def on_message(self, client: FrameClient, message: pb.Message) -> None:
        stamp = int(message.body[:19])
        self.samples.append((stamp, time.monotonic_ns() - stamp))


async def _control(
    sender: FrameClient, to: int, rate: float, stop: asyncio.Event
) -> None:
    """Send one message every 1/rate seconds until ``stop`` is set."""
    period = 1.0 / rate
    next_at = time.monotonic()
    client_id = sender.connected.result().last_client_id
    while not stop.is_set():
        client_id += 1
        body = b"%019d control" % time.monotonic_ns()
        sender.send(pb.Send(to=to, client_id=client_id, body=body))
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


# The coordinator.


def run(bench: Bench) -> ScenarioResult:
    """Connect the clients, fill their inboxes, then run the storms."""
    args = bench.args
    workers = max(2, worker_count_for(args.clients, args.workers))
    bench.workers_used = workers
    with (
        WorkerPool(workers) as pool,
        bench.target(args.clients + 2, {}) as (target, credentials),
    ):
        if target.pid is None:
            raise BenchError(
                "storm needs the server's process id to read its CPU time:"
                " pass --server-pid with --server, or use the embedded server"
            )
        control, storm_clients = credentials[:2], credentials[2:]
        _open(bench, pool, target, storm_clients)
        asyncio.run(_fill(bench, pool, target, control[0], storm_clients))
        runs = []
        for index in range(args.runs):
            result = asyncio.run(_storm(bench, pool, target, control, target.pid))
            bench.log(
                f"run {index + 1}: all back after {result['all_back_s']:.2f} s,"
                f" control p99 {result['control_during']['p99_ms']} ms"
            )
            runs.append(result)
        described = target.describe()

    return ScenarioResult(
        target=described,
        parameters={
            "clients": args.clients,
            "missed": args.missed,
            "spread_s": args.spread,
            "control_rate": args.control_rate,
            "transport": args.transport,
            "runs": args.runs,
            "workers": workers,
        },
        results={"medians": _medians(runs), "runs": runs},
        headline=_headline(_medians(runs), args.spread, len(runs)),
        checks=_checks(_medians(runs), args.spread),
        tables=[_table(runs)],
        charts=[_chart(runs[-1])],
    )


def _open(
    bench: Bench, pool: WorkerPool, target: Target, credentials: list[Credential]
) -> None:
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
    )
    failed = sum(part["failed"] for part in parts)
    if failed:
        raise BenchError(
            f"{failed} of {len(credentials)} storm clients failed to connect"
        )
    bench.log(f"{len(credentials)} storm clients connected over {len(pool)} workers")


async def _fill(
    bench: Bench,
    pool: WorkerPool,
    target: Target,
    filler: Credential,
    recipients: list[Credential],
) -> None:
    """Send ``--missed`` messages to every storm client and wait for them."""
    missed = bench.args.missed
    if missed == 0:
        return
    acks: asyncio.Queue[int] = asyncio.Queue()

    class AckCounter(Listener):
        def on_send_ack(self, client: FrameClient, ack: pb.SendAck) -> None:
            acks.put_nowait(ack.client_id)

        def on_error(self, client: FrameClient, error: pb.Error) -> None:
            acks.put_nowait(-error.code)

    sender = await open_client(
        filler, endpoints_of(target), bench.args.transport, AckCounter()
    )
    try:
        targets = [item.user_id for item in recipients for _ in range(missed)]
        for start in range(0, len(targets), FILL_WINDOW):
            batch = targets[start : start + FILL_WINDOW]
            frames = [
                sender.protocol.send(
                    pb.Send(to=to, client_id=start + i + 1, body=b"missed")
                )
                for i, to in enumerate(batch)
            ]
            sender.write(b"".join(frames))
            for _ in batch:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    if await acks.get() < 0:
                        raise BenchError("the server rejected a filler message")
    finally:
        sender.abort()

    deadline = time.monotonic() + ATTEMPT_TIMEOUT
    while time.monotonic() < deadline:
        counts = await asyncio.to_thread(
            pool.call_all, count_caught_up, [{"minimum": missed}] * len(pool)
        )
        if sum(counts) == len(recipients):
            bench.log(f"each storm client received {missed} messages")
            return
        await asyncio.sleep(0.2)
    raise BenchError(
        f"only {sum(counts)} of {len(recipients)} storm clients received their"
        f" {missed} messages"
    )


async def _storm(
    bench: Bench, pool: WorkerPool, target: Target, control: list[Credential], pid: int
) -> dict[str, Any]:
    """Run one storm with the control pair sending; return its figures."""
    args = bench.args
    endpoints = endpoints_of(target)
    recipient = ControlRecipient()
    sender = await open_client(control[0], endpoints, args.transport)
    receiver = await open_client(control[1], endpoints, args.transport, recipient)
    stop = asyncio.Event()
    sending = asyncio.create_task(
        _control(sender, control[1].user_id, args.control_rate, stop)
    )
    try:
        await asyncio.sleep(CONTROL_BEFORE)
        at = time.monotonic() + 0.2
        cpu_before = read_cpu_seconds(pid)
        call = {
            "at": at,
            "spread": args.spread,
            "missed": args.missed,
            "seconds": args.spread + 60.0,
            "endpoints": endpoints,
            "transport": args.transport,
        }
        parts = await asyncio.to_thread(
            pool.call_all, drop_and_reconnect, [call] * len(pool)
        )
        server_cpu = read_cpu_seconds(pid) - cpu_before
        await asyncio.sleep(CONTROL_AFTER)
    finally:
        stop.set()
        await sending
        await asyncio.sleep(0.2)
        sender.abort()
        receiver.abort()
    return _summarise(parts, recipient.samples, at, server_cpu)


def _summarise(
    parts: list[dict[str, Any]],
    control: list[tuple[int, int]],
    at: float,
    server_cpu: float,
) -> dict[str, Any]:
    back: array.array[int] = array.array("q")
    lag: array.array[int] = array.array("q")
    for part in parts:
        back.frombytes(part["back"])
        lag.frombytes(part["lag"])
    all_back_ns = max(back) if back else 0
    at_ns = int(at * 1e9)
    before = [latency for sent, latency in control if sent < at_ns]
    during = [
        latency for sent, latency in control if at_ns <= sent <= at_ns + all_back_ns
    ]
    return {
        "clients_back": len(back),
        "gave_up": sum(part["gave_up"] for part in parts),
        "attempts": sum(part["attempts"] for part in parts),
        "short_pages": sum(part["short_pages"] for part in parts),
        "all_back_s": all_back_ns / 1e9,
        "back_after_drop": latency_summary(back),
        "lag_behind_schedule": latency_summary(lag),
        "server_cpu_seconds": server_cpu,
        "generator_cpu_seconds": sum(part["cpu_seconds"] for part in parts),
        "control_before": latency_summary(before),
        "control_during": latency_summary(during),
        "back_timeline_s": sorted(value / 1e9 for value in back)[
            :: max(1, len(back) // 200)
        ],
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "all_back_s": median(run["all_back_s"] for run in runs),
        "lag_p99_ms": median(run["lag_behind_schedule"]["p99_ms"] for run in runs),
        "control_before_p99_ms": median(
            run["control_before"]["p99_ms"] for run in runs
        ),
        "control_during_p99_ms": median(
            run["control_during"]["p99_ms"] for run in runs
        ),
        "gave_up": max(run["gave_up"] for run in runs),
        "server_cpu_seconds": median(run["server_cpu_seconds"] for run in runs),
    }


def _headline(
    medians: dict[str, Any], spread: float, runs: int
) -> list[tuple[str, str]]:
    of_runs = f"median of {runs} runs" if runs > 1 else "1 run"
    return [
        (
            "time until every client is back and synced"
            f" (reconnects spread over {spread:g} s)",
            f"{medians['all_back_s']:.2f} s ({of_runs})",
        ),
        ("p99 lag behind the scheduled reconnect", _ms(medians["lag_p99_ms"])),
        (
            "control pair p99 latency before / during the storm",
            f"{_ms(medians['control_before_p99_ms'])}"
            f" / {_ms(medians['control_during_p99_ms'])}",
        ),
        ("clients that gave up", str(medians["gave_up"])),
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _checks(medians: dict[str, Any], spread: float) -> list[Check]:
    back = medians["all_back_s"]
    p99 = medians["control_during_p99_ms"]
    return [
        Check(
            "every client back and synced within the spread window",
            f"<= {spread:g} s (+5%)",
            f"{back:.2f} s, {medians['gave_up']} gave up",
            back <= spread * SPREAD_TOLERANCE and medians["gave_up"] == 0,
        ),
        Check(
            "control pair p99 latency during the storm",
            f"< {TARGET_CONTROL_P99_MS:g} ms",
            "no message" if p99 is None else f"{p99:.1f} ms",
            None if p99 is None else p99 < TARGET_CONTROL_P99_MS,
        ),
    ]


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| run | clients back | gave up | attempts | all back s | lag p50 / p99 ms"
        " | control p99 before ms | control p50 / p99 / max during ms"
        " | server CPU s | generator CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, run in enumerate(runs, start=1):
        lag = run["lag_behind_schedule"]
        during = run["control_during"]
        lines.append(
            f"| {index} | {run['clients_back']} | {run['gave_up']} | {run['attempts']}"
            f" | {run['all_back_s']:.2f}"
            f" | {_num(lag['p50_ms'])} / {_num(lag['p99_ms'])}"
            f" | {_num(run['control_before']['p99_ms'])}"
            f" | {_num(during['p50_ms'])} / {_num(during['p99_ms'])}"
            f" / {_num(during['max_ms'])}"
            f" | {run['server_cpu_seconds']:.2f} | {run['generator_cpu_seconds']:.2f} |"
        )
    lines.extend(
        [
            "",
            "Lag is the time from a client's scheduled reconnect until its"
            " Connected arrived with every missed entry: TCP connect, Connect,"
            " authentication and the catch-up page.",
        ]
    )
    return "\n".join(lines)


def _chart(run: dict[str, Any]) -> Chart:
    times = run["back_timeline_s"]
    step = run["clients_back"] / max(1, len(times))
    return Chart(
        name="back",
        title="Clients back and synced after the drop (last run)",
        x_label="seconds after the drop",
        y_label="clients back",
        series=[Series("clients", times, [step * (i + 1) for i in range(len(times))])],
    )
