"""``wire``: bytes on the socket for each step of a short session.

Alice and Bob, two new accounts, each connect once. The scenario then counts
the bytes each client wrote and read for:

1. Alice connecting with nothing missed: Connect and Connected.
2. One 1:1 "hello": Alice's Send and SendAck, Bob's Message and Cursor.
3. One heartbeat round trip on Alice's connection.
4. Bob reconnecting after missing one message: Connect and a Connected that
   carries it.
5. Alice reconnecting with nothing missed.

Counts are TCP payload bytes: what the client wrote to and read from its
socket, checked against the kernel's own per-connection counters
(``tcpi_bytes_acked`` and ``tcpi_bytes_received`` of TCP_INFO). Over
WebSocket they include the WebSocket framing; the HTTP upgrade handshake is
counted separately. TCP/IP headers are not counted.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import asdict, dataclass
from typing import Any

from switchboard.bench.charts import Chart, Series
from switchboard.bench.client import (
    FrameClient,
    Listener,
    connect_transport,
)
from switchboard.bench.report import Check, ScenarioResult
from switchboard.bench.runner import Bench, endpoints_of
from switchboard.bench.target import BenchError, Target
from switchboard.protocol import pb

__all__ = ["run"]

STEP_TIMEOUT = 10.0
"""Seconds to wait for the frames of one step."""
QUIET_TIME = 0.1
"""Seconds to wait after a step's last frame, so any stray frame is counted."""
TCP_INFO_SIZE = 256
TCP_INFO_BYTES_ACKED = 120
"""Offset of tcpi_bytes_acked (u64) in Linux's struct tcp_info; the
tcpi_bytes_received counter follows it."""


@dataclass(frozen=True, slots=True)
class Step:
    """Bytes of one step on one connection, counted by the client and the kernel."""

    step: str
    connection: str
    frames_sent: str
    frames_received: str
    sent: int
    received: int
    kernel_sent: int | None
    kernel_received: int | None

    @property
    def kernel_agrees(self) -> bool | None:
        if self.kernel_sent is None or self.kernel_received is None:
            return None
        return self.kernel_sent == self.sent and self.kernel_received == self.received


class Recorder(Listener):
    """Puts every frame a client receives on a queue, by name."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_message(self, client: FrameClient, message: pb.Message) -> None:
        self.frames.put_nowait(("Message", message))

    def on_send_ack(self, client: FrameClient, ack: pb.SendAck) -> None:
        self.frames.put_nowait(("SendAck", ack))

    def on_sync_response(self, client: FrameClient, page: pb.SyncResponse) -> None:
        self.frames.put_nowait(("SyncResponse", page))

    def on_heartbeat(self, client: FrameClient) -> None:
        self.frames.put_nowait(("Heartbeat", None))

    def on_error(self, client: FrameClient, error: pb.Error) -> None:
        self.frames.put_nowait(("Error", error))

    async def expect(self, name: str) -> Any:
        async with asyncio.timeout(STEP_TIMEOUT):
            got, frame = await self.frames.get()
        if got != name:
            raise BenchError(f"expected a {name} frame, got {got}: {frame}")
        return frame


def kernel_counters(client: FrameClient) -> tuple[int, int] | None:
    """Return the kernel's (bytes acked, bytes received) of a TCP connection."""
    transport = client.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < TCP_INFO_BYTES_ACKED + 16:
        return None
    acked, received = struct.unpack_from("<QQ", info, TCP_INFO_BYTES_ACKED)
    return acked, received


class Meter:
    """Counts one client's bytes from a starting point."""

    def __init__(self, client: FrameClient) -> None:
        self.client = client
        self.sent = client.bytes_sent
        self.received = client.bytes_received
        self.kernel = kernel_counters(client)

    async def step(
        self, step: str, connection: str, frames_sent: str, frames_received: str
    ) -> Step:
        """Wait until the peer acknowledged everything sent; return the counts."""
        client = self.client
        await asyncio.sleep(QUIET_TIME)
        deadline = time.monotonic() + STEP_TIMEOUT
        kernel = kernel_counters(client)
        # Loopback ACKs may be delayed by up to 40 ms (Linux delayed ACK).
        while (
            self.kernel is not None
            and kernel is not None
            and kernel[0] - self.kernel[0] < client.bytes_sent - self.sent
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.01)
            kernel = kernel_counters(client)
        kernel_sent = kernel_received = None
        if self.kernel is not None and kernel is not None:
            kernel_sent = kernel[0] - self.kernel[0]
            kernel_received = kernel[1] - self.kernel[1]
        return Step(
            step=step,
            connection=connection,
            frames_sent=frames_sent,
            frames_received=frames_received,
            sent=client.bytes_sent - self.sent,
            received=client.bytes_received - self.received,
            kernel_sent=kernel_sent,
            kernel_received=kernel_received,
        )


async def _session(
    target: Target, alice_id: Any, bob_id: Any, transport: str
) -> dict[str, Any]:
    endpoints = endpoints_of(target)
    alice_frames, bob_frames = Recorder(), Recorder()
    steps: list[Step] = []

    bob = await connect_transport(bob_id, endpoints, transport, bob_frames)
    await bob.authenticate()
    alice = await connect_transport(alice_id, endpoints, transport, alice_frames)
    handshake = {"sent": alice.bytes_sent, "received": alice.bytes_received}

    meter = Meter(alice)
    connected = await alice.authenticate()
    if connected.sync.messages or connected.sync.has_more:
        raise BenchError("Alice's new inbox is not empty; use a fresh server")
    steps.append(await meter.step("connect", "alice", "Connect", "Connected"))

    alice_meter, bob_meter = Meter(alice), Meter(bob)
    alice.send(pb.Send(to=bob_id.user_id, client_id=1, body=b"hello"))
    await alice_frames.expect("SendAck")
    message = await bob_frames.expect("Message")
    bob.send(pb.Cursor(seq=message.seq))
    steps.append(await alice_meter.step("hello", "alice", "Send", "SendAck"))
    steps.append(await bob_meter.step("hello", "bob", "Cursor", "Message"))

    meter = Meter(alice)
    alice.heartbeat()
    await alice_frames.expect("Heartbeat")
    steps.append(await meter.step("heartbeat", "alice", "Heartbeat", "Heartbeat"))

    # Bob misses one message while offline, then catches up on reconnecting.
    bob_cursor = bob.head_seq
    bob.abort()
    await bob.lost
    alice.send(pb.Send(to=bob_id.user_id, client_id=2, body=b"hello"))
    await alice_frames.expect("SendAck")
    bob = await connect_transport(bob_id, endpoints, transport, bob_frames)
    meter = Meter(bob)
    connected = await bob.authenticate(last_seq=bob_cursor)
    if len(connected.sync.messages) != 1:
        raise BenchError(
            f"Bob's reconnect caught up {len(connected.sync.messages)} messages,"
            " expected 1"
        )
    steps.append(
        await meter.step("catch-up", "bob", "Connect", "Connected with 1 message")
    )

    alice_cursor = alice.head_seq
    alice.abort()
    await alice.lost
    alice = await connect_transport(alice_id, endpoints, transport, alice_frames)
    meter = Meter(alice)
    await alice.authenticate(last_seq=alice_cursor)
    steps.append(await meter.step("reconnect", "alice", "Connect", "Connected"))

    alice.abort()
    bob.abort()
    return {
        "handshake": handshake if transport == "ws" else None,
        "token_length": len(alice_id.token),
        "device_length": len(alice_id.device),
        "steps": [
            asdict(step) | {"kernel_agrees": step.kernel_agrees} for step in steps
        ],
        "totals": _totals(steps),
    }


def _totals(steps: list[Step]) -> dict[str, Any]:
    def total(name: str) -> dict[str, int]:
        chosen = [step for step in steps if step.step == name]
        sent = sum(step.sent for step in chosen)
        received = sum(step.received for step in chosen)
        return {"sent": sent, "received": received, "both": sent + received}

    return {
        "connect": total("connect"),
        "hello": total("hello"),
        "heartbeat": total("heartbeat"),
        "catch_up": total("catch-up"),
        "reconnect": total("reconnect"),
    }


def run(bench: Bench) -> ScenarioResult:
    """Measure each transport on its own server and report the bytes."""
    by_transport: dict[str, Any] = {}
    described: dict[str, Any] = {}
    for transport in bench.args.transport:
        with bench.target(2, {}) as (target, credentials):
            described = target.describe()
            alice, bob = credentials
            by_transport[transport] = _run_loop(_session(target, alice, bob, transport))
        totals = by_transport[transport]["totals"]
        bench.log(f"{transport}: 1:1 hello exchange {totals['hello']['both']} bytes")
    return ScenarioResult(
        target=described,
        parameters={"transports": bench.args.transport, "body": "hello"},
        results=by_transport,
        headline=_headline(by_transport),
        checks=_checks(by_transport.get("tcp")),
        tables=[_steps_table(by_transport)],
        charts=[_chart(by_transport)],
    )


def _run_loop(session: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        result: dict[str, Any] = asyncio.run(session)
    else:
        result = uvloop.run(session)
    return result


def _headline(by_transport: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for transport, result in by_transport.items():
        totals = result["totals"]
        for key, label in (
            ("connect", "connect + sync, nothing missed"),
            ("hello", "1:1 hello: Send, SendAck, Message, Cursor"),
            ("heartbeat", "heartbeat round trip"),
            ("catch_up", "reconnect catching up 1 message"),
            ("reconnect", "reconnect, nothing missed"),
        ):
            item = totals[key]
            rows.append(
                (
                    f"{label} ({transport})",
                    f"{item['both']} bytes ({item['sent']} sent,"
                    f" {item['received']} received)",
                )
            )
    return rows


def _checks(tcp: dict[str, Any] | None) -> list[Check]:
    """Compare the TCP byte counts with the protocol's targets."""
    if tcp is None:
        return []
    totals = tcp["totals"]
    hello = totals["hello"]["both"]
    beat = totals["heartbeat"]
    reconnect = totals["reconnect"]["both"]
    return [
        Check(
            "TCP payload of a 1:1 hello exchange",
            "<= 40 bytes",
            f"{hello} bytes",
            hello <= 40,
        ),
        Check(
            "heartbeat, each way",
            "<= 2 bytes",
            f"{beat['sent']} byte sent, {beat['received']} received",
            beat["sent"] <= 2 and beat["received"] <= 2,
        ),
        Check(
            "reconnect with nothing missed, one round trip",
            "<= 80 bytes",
            f"{reconnect} bytes",
            reconnect <= 80,
        ),
    ]


def _steps_table(by_transport: dict[str, Any]) -> str:
    lines = [
        "| transport | step | connection | client sends | bytes | client receives"
        " | bytes | kernel TCP_INFO agrees |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for transport, result in by_transport.items():
        if result["handshake"] is not None:
            handshake = result["handshake"]
            lines.append(
                f"| {transport} | WebSocket handshake | alice | HTTP upgrade request"
                f" | {handshake['sent']} | HTTP 101 response | {handshake['received']}"
                " | |"
            )
        for step in result["steps"]:
            agrees = {True: "yes", False: "no", None: "not available"}[
                step["kernel_agrees"]
            ]
            lines.append(
                f"| {transport} | {step['step']} | {step['connection']}"
                f" | {step['frames_sent']} | {step['sent']}"
                f" | {step['frames_received']} | {step['received']} | {agrees} |"
            )
    first = next(iter(by_transport.values()))
    lines.append("")
    lines.append(
        f"Tokens are {first['token_length']} characters, as the server issues"
        f" them, and device ids {first['device_length']} characters. User ids and"
        " sequence numbers are small, so each takes one byte."
    )
    return "\n".join(lines)


def _chart(by_transport: dict[str, Any]) -> Chart:
    keys = ["connect", "hello", "heartbeat", "catch_up", "reconnect"]
    return Chart(
        name="bytes",
        title="Bytes on the socket per step, both directions",
        x_label="step",
        y_label="bytes",
        bars=True,
        series=[
            Series(
                transport,
                keys,
                [float(result["totals"][key]["both"]) for key in keys],
            )
            for transport, result in by_transport.items()
        ],
    )
