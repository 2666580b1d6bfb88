"""``fanout``: server CPU per recipient of a group message, and delivery time.

For each size in ``--sizes`` the scenario creates a group over the HTTP API
(``POST /v1/groups``, then ``POST /v1/groups/{id}/members`` in batches of
at most 1,000 names), owned by the sender. A fraction ``--online`` of the
other members connects, spread over the load-generator processes. The
sender then sends ``--messages`` messages one after another, each after the
previous one reached every online member.

Each ``--mode`` gets a new embedded server:

``write``
    ``SWITCHBOARD_LARGE_GROUP_THRESHOLD`` is raised to the largest size, so
    the server stores each group message once, adds an entry to every
    member's inbox (fan-out on write), then pushes it to the online members.
``read``
    The threshold is 1, so every group keeps one timeline: the server
    stores each message once and pushes the same encoded frame to the online
    members, who page the timeline when they reconnect (fan-out on read).
    By default the server switches a group to this mode above 500 members.

Server CPU is the server's CPU time from just before the first Send until
the last delivery of the last message. Per recipient divides it by the
members other than the sender times the messages, and per online delivery
by the pushes that reached online members. The recipients send no Cursor
frames, so that cost is not included. Time to the last delivery runs from
the Send being written to the last online member reading the Message.

A ``--server`` keeps its own threshold, reported as mode ``server``. The
server's ``max_group_size`` (10,000 by default) stays in force: a size
that the server rejects is reported as skipped with the server's reason.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from switchboard.bench.accounts import Credential
from switchboard.bench.charts import Chart, Series
from switchboard.bench.client import FrameClient, Listener, open_client
from switchboard.bench.loadgen import (
    WorkerPool,
    WorkerState,
    close_clients,
    open_clients,
    split,
    worker_count_for,
)
from switchboard.bench.procfs import read_cpu_seconds
from switchboard.bench.report import Check, ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.stats import median
from switchboard.bench.target import BenchError, Target
from switchboard.protocol import pb

__all__ = ["run"]

ADD_BATCH = 1000
"""Names per POST /v1/groups/{id}/members request, the API's maximum."""
THRESHOLD_VARIABLE = "SWITCHBOARD_LARGE_GROUP_THRESHOLD"
DELIVERY_TIMEOUT = 10.0
"""Seconds one message has to reach every online member."""
TARGET_US_PER_RECIPIENT = 1.0


class Deliveries(Listener):
    """Receive times of group messages at one worker, by the body's stamp."""

    def __init__(self) -> None:
        self.received: dict[int, list[int]] = {}
        """Stamp -> [messages received, latest receive time in ns]."""

    def on_message(self, client: FrameClient, message: pb.Message) -> None:
        if not message.group or message.content_type != 0:
            return
        now = time.monotonic_ns()
        stamp = int(message.body[:19])
        entry = self.received.setdefault(stamp, [0, 0])
        entry[0] += 1
        entry[1] = max(entry[1], now)


# Worker-side functions, run in load-generator processes.


async def listen(state: WorkerState) -> int:
    """Route every open client's frames to one Deliveries record."""
    deliveries = Deliveries()
    state.values["deliveries"] = deliveries
    for client in state.clients:
        client.listener = deliveries
    return len(state.clients)


async def wait_for(state: WorkerState, stamp: int, seconds: float) -> dict[str, int]:
    """Wait at most ``seconds`` until every client here has the message ``stamp``."""
    deliveries: Deliveries = state.values["deliveries"]
    expected = len(state.clients)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        entry = deliveries.received.get(stamp, [0, 0])
        if entry[0] >= expected:
            break
        await asyncio.sleep(0.001)
    count, last = deliveries.received.get(stamp, [0, 0])
    return {"received": count, "expected": expected, "last_ns": last}


# The coordinator.


def run(bench: Bench) -> ScenarioResult:
    """Create one group per size and mode, then measure its messages."""
    args = bench.args
    largest = args.sizes[-1]
    online_most = _online_count(largest, args.online)
    workers = worker_count_for(online_most, args.workers)
    bench.workers_used = workers
    modes = args.modes if bench.embedded else ["server"]
    results: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    with WorkerPool(workers) as pool:
        for mode in modes:
            runs, targets[mode] = _measure_mode(bench, pool, mode)
            results[mode] = {"medians": _medians(runs), "runs": runs}

    return ScenarioResult(
        target=_described_target(targets),
        parameters={
            "sizes": args.sizes,
            "online_fraction": args.online,
            "messages": args.messages,
            "modes": modes,
            "transport": args.transport,
            "runs": args.runs,
            "workers": workers,
        },
        results={"modes": results, "targets": targets},
        headline=_headline(results, args.runs),
        checks=_checks(results),
        tables=[_table(results)],
        charts=_charts(results),
    )


def _described_target(targets: dict[str, Any]) -> dict[str, Any]:
    """Return the first mode's server description, with the threshold of
    every mode in its settings, as ``10000 (write), 1 (read)``."""
    first = next(iter(targets.values()))
    thresholds = [
        f"{target['server_env'][THRESHOLD_VARIABLE]} ({mode})"
        for mode, target in targets.items()
        if THRESHOLD_VARIABLE in target.get("server_env", {})
    ]
    if not thresholds:
        return dict(first)
    server_env = {**first["server_env"], THRESHOLD_VARIABLE: ", ".join(thresholds)}
    return {**first, "server_env": dict(sorted(server_env.items()))}


def _mode_env(mode: str, largest: int) -> dict[str, str]:
    if mode == "write":
        return {THRESHOLD_VARIABLE: str(largest)}
    if mode == "read":
        return {THRESHOLD_VARIABLE: "1"}
    return {}


def _measure_mode(
    bench: Bench, pool: WorkerPool, mode: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Measure every size on one server; return the runs and its description."""
    args = bench.args
    largest = args.sizes[-1]
    runs: list[dict[str, Any]] = []
    with bench.target(largest, _mode_env(mode, largest)) as (target, credentials):
        if target.pid is None:
            raise BenchError(
                "fanout needs the server's process id to read its CPU time:"
                " pass --server-pid with --server, or use the embedded server"
            )
        bench.log(f"mode {mode}")
        for _ in range(args.runs):
            runs.append(
                {
                    str(size): _measure_size(
                        bench, pool, target, credentials[:size], target.pid
                    )
                    for size in args.sizes
                }
            )
        return runs, target.describe()


def _message_count(messages: int, size: int) -> int:
    """Return how many messages to send into a group of ``size``.

    Groups below 1,000 members get proportionally more, so that their CPU
    time spans many of /proc's 10 ms clock ticks.
    """
    return max(messages, messages * 1000 // size)


def _online_count(size: int, fraction: float) -> int:
    return max(1, round((size - 1) * min(fraction, 1.0)))


def _measure_size(
    bench: Bench,
    pool: WorkerPool,
    target: Target,
    members: list[Credential],
    pid: int,
) -> dict[str, Any]:
    """Create a group of ``members`` (the first one sends); measure its sends."""
    args = bench.args
    size = len(members)
    sender = members[0]
    started = time.monotonic()
    group_id, rejection = _create_group(target.base_url, sender, members[1:])
    if group_id is None:
        bench.log(f"group of {size}: skipped, {rejection}")
        return {"size": size, "skipped": rejection}
    created_seconds = time.monotonic() - started
    bench.log(f"group of {size} created in {created_seconds:.1f} s")

    online = members[1 : 1 + _online_count(size, args.online)]
    parts = pool.call_all(
        open_clients,
        [
            {
                "credentials": part,
                "endpoints": endpoints_of(target),
                "transport": args.transport,
            }
            for part in split(online, len(pool))
        ],
    )
    if sum(part["failed"] for part in parts):
        raise BenchError(f"online members of the group of {size} failed to connect")
    pool.call_all(listen, [{}] * len(pool))
    try:
        cpu, sends = asyncio.run(
            _send_all(bench, pool, target, sender, group_id, size, pid)
        )
    finally:
        pool.call_all(close_clients, [{}] * len(pool))
    return _summarise(size, len(online), created_seconds, cpu, sends)


def _create_group(
    base_url: str, owner: Credential, others: list[Credential]
) -> tuple[int | None, str]:
    """Create the group over HTTP; return its id, or None and the server's reason."""
    headers = {"Authorization": f"Bearer {owner.token}"}
    names = [member.name for member in others]
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as http:
        response = http.post(
            "/v1/groups", json={"name": "bench", "members": names[:ADD_BATCH]}
        )
        if response.status_code == 409:
            return None, _reason(response)
        _check(response, "POST /v1/groups")
        group_id: int = response.json()["id"]
        for start in range(ADD_BATCH, len(names), ADD_BATCH):
            response = http.post(
                f"/v1/groups/{group_id}/members",
                json={"names": names[start : start + ADD_BATCH]},
            )
            if response.status_code == 409:
                return None, _reason(response)
            _check(response, f"POST /v1/groups/{group_id}/members")
    return group_id, ""


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def _check(response: httpx.Response, request: str) -> None:
    if response.status_code not in (200, 201):
        raise BenchError(
            f"{request} failed with HTTP {response.status_code}: {response.text[:300]}"
        )


async def _send_all(
    bench: Bench,
    pool: WorkerPool,
    target: Target,
    sender: Credential,
    group_id: int,
    group_size: int,
    pid: int,
) -> tuple[float, list[dict[str, Any]]]:
    """Send the messages one after another.

    Returns the server's CPU seconds over all of them, which includes its
    idle work between messages, and one record per message.
    """
    acks: asyncio.Queue[pb.SendAck] = asyncio.Queue()

    class AckListener(Listener):
        def on_send_ack(self, client: FrameClient, ack: pb.SendAck) -> None:
            acks.put_nowait(ack)

    client = await open_client(
        sender, endpoints_of(target), bench.args.transport, AckListener()
    )
    # The server deduplicates by client_id, so number on from the last one
    # stored for this device by an earlier group.
    first_id = client.connected.result().last_client_id + 1
    sends = []
    try:
        cpu_before = read_cpu_seconds(pid)
        for index in range(_message_count(bench.args.messages, group_size)):
            sends.append(
                await _send_one(pool, client, acks, group_id, first_id + index)
            )
        cpu = read_cpu_seconds(pid) - cpu_before
    finally:
        client.abort()
    return cpu, sends


async def _send_one(
    pool: WorkerPool,
    client: FrameClient,
    acks: asyncio.Queue[pb.SendAck],
    group_id: int,
    client_id: int,
) -> dict[str, Any]:
    stamp = time.monotonic_ns()
    body = b"%019d group message %d" % (stamp, client_id)
    client.send(pb.Send(group=group_id, client_id=client_id, body=body))
    async with asyncio.timeout(DELIVERY_TIMEOUT):
        await acks.get()
    acked = time.monotonic_ns()
    arguments = [{"stamp": stamp, "seconds": DELIVERY_TIMEOUT}] * len(pool)
    parts = await asyncio.to_thread(pool.call_all, wait_for, arguments)

    received = sum(part["received"] for part in parts)
    expected = sum(part["expected"] for part in parts)
    if received < expected:
        raise BenchError(
            f"group message {client_id} reached {received} of {expected} online"
            f" members within {DELIVERY_TIMEOUT:.0f} s"
        )
    last = max(part["last_ns"] for part in parts)
    return {
        "ack_ms": (acked - stamp) / 1e6,
        "last_delivery_ms": (last - stamp) / 1e6,
        "deliveries": received,
    }


def _summarise(
    size: int,
    online: int,
    created_seconds: float,
    cpu: float,
    sends: list[dict[str, Any]],
) -> dict[str, Any]:
    entries = len(sends) * (size - 1)
    pushes = sum(send["deliveries"] for send in sends)
    last = [send["last_delivery_ms"] for send in sends]
    return {
        "size": size,
        "online": online,
        "messages": len(sends),
        "group_created_seconds": created_seconds,
        "server_cpu_seconds": cpu,
        "server_cpu_us_per_recipient": cpu / entries * 1e6,
        "server_cpu_us_per_online_delivery": cpu / pushes * 1e6,
        "server_cpu_ms_per_message": cpu / len(sends) * 1e3,
        "last_delivery_ms_median": statistics.median(last),
        "last_delivery_ms_max": max(last),
        "ack_ms_median": statistics.median(send["ack_ms"] for send in sends),
        "sends": sends,
    }


MEDIAN_FIELDS = (
    "server_cpu_us_per_recipient",
    "server_cpu_us_per_online_delivery",
    "server_cpu_ms_per_message",
    "last_delivery_ms_median",
    "ack_ms_median",
)


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine the runs size by size; a size skipped once stays skipped."""
    medians: dict[str, Any] = {}
    for key, first in runs[0].items():
        results = [run[key] for run in runs]
        skipped = [result for result in results if "skipped" in result]
        if skipped:
            medians[key] = skipped[0]
            continue
        medians[key] = {
            "size": first["size"],
            "online": first["online"],
            "messages": first["messages"],
            **{
                field: median(item[field] for item in results)
                for field in MEDIAN_FIELDS
            },
            "last_delivery_ms_max": max(
                item["last_delivery_ms_max"] for item in results
            ),
        }
    return medians


def _measured(medians: dict[str, Any]) -> list[dict[str, Any]]:
    return [result for result in medians.values() if "skipped" not in result]


MODE_NAMES = {
    "write": "fan-out on write",
    "read": "fan-out on read",
    "server": "the server's setting",
}


def _headline(results: dict[str, Any], runs: int) -> list[tuple[str, str]]:
    of_runs = f"median of {runs} runs" if runs > 1 else "1 run"
    rows = []
    for mode, mode_results in results.items():
        for result in mode_results["medians"].values():
            size = result["size"]
            label = f"{MODE_NAMES[mode]}, group of {size:,}"
            if "skipped" in result:
                rows.append((label, f"skipped: {result['skipped']}"))
                continue
            rows.append(
                (
                    f"{label}, {result['online']:,} online: server CPU per"
                    " recipient, per online delivery, time to last delivery"
                    " (median of the messages)",
                    f"{result['server_cpu_us_per_recipient']:.1f} µs,"
                    f" {result['server_cpu_us_per_online_delivery']:.1f} µs,"
                    f" {result['last_delivery_ms_median']:.1f} ms ({of_runs})",
                )
            )
    return rows


def _checks(results: dict[str, Any]) -> list[Check]:
    """Check the largest group of each mode against the per-recipient target.

    Fan-out on write is checked per recipient, since each one costs an inbox
    entry. Fan-out on read writes no entry per member, so it is checked per
    online delivery.
    """
    checks = []
    for mode, mode_results in results.items():
        measured = _measured(mode_results["medians"])
        if not measured:
            continue
        largest = measured[-1]
        field, unit = (
            ("server_cpu_us_per_recipient", "recipient")
            if mode == "write"
            else ("server_cpu_us_per_online_delivery", "online delivery")
        )
        value = largest[field]
        checks.append(
            Check(
                f"{MODE_NAMES[mode]}: server CPU per {unit}, group of"
                f" {largest['size']:,}",
                f"<= {TARGET_US_PER_RECIPIENT:g} µs",
                f"{value:.1f} µs",
                value <= TARGET_US_PER_RECIPIENT,
            )
        )
    return checks


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| mode | run | members | online | messages | server CPU ms per message"
        " | µs per recipient | µs per online delivery | SendAck ms (median)"
        " | last delivery ms (median) | last delivery ms (max)"
        " | seconds to create the group |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, mode_results in results.items():
        for index, run in enumerate(mode_results["runs"], start=1):
            for result in _measured(run):
                lines.append(
                    f"| {mode} | {index} | {result['size']:,} | {result['online']:,}"
                    f" | {result['messages']}"
                    f" | {result['server_cpu_ms_per_message']:.1f}"
                    f" | {result['server_cpu_us_per_recipient']:.1f}"
                    f" | {result['server_cpu_us_per_online_delivery']:.1f}"
                    f" | {result['ack_ms_median']:.1f}"
                    f" | {result['last_delivery_ms_median']:.1f}"
                    f" | {result['last_delivery_ms_max']:.1f}"
                    f" | {result['group_created_seconds']:.1f} |"
                )
    lines.extend(
        [
            "",
            "A recipient is a member other than the sender. Server CPU covers"
            " all messages of a group, from before the first Send to the last"
            " delivery of the last one.",
        ]
    )
    return "\n".join(lines)


def _charts(results: dict[str, Any]) -> list[Chart]:
    cost: list[Series] = []
    delivery: list[Series] = []
    for mode, mode_results in results.items():
        measured = _measured(mode_results["medians"])
        if not measured:
            continue
        sizes = [float(result["size"]) for result in measured]
        name = MODE_NAMES[mode]
        if mode != "read":
            cost.append(
                Series(
                    f"{name}, per recipient",
                    sizes,
                    [result["server_cpu_us_per_recipient"] for result in measured],
                )
            )
        cost.append(
            Series(
                f"{name}, per online delivery",
                sizes,
                [result["server_cpu_us_per_online_delivery"] for result in measured],
            )
        )
        delivery.append(
            Series(
                f"{name}, last delivery",
                sizes,
                [result["last_delivery_ms_median"] for result in measured],
            )
        )
    if not cost:
        return []
    return [
        Chart(
            name="cost",
            title="Server CPU per recipient of a group message (median)",
            x_label="group members",
            y_label="microseconds",
            series=cost,
            log_y=True,
        ),
        Chart(
            name="delivery",
            title="Time from Send to the last online member's delivery (median)",
            x_label="group members",
            y_label="milliseconds",
            series=delivery,
        ),
    ]
