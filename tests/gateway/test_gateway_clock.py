"""Gateway timeouts on a virtual clock: ticks are driven by the test."""

from __future__ import annotations

import asyncio
import logging

import pytest

from switchboard.bus.base import Action, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.errors import ErrorCode
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.session import Session
from switchboard.ids import DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.frames import FrameType, encode


class MemorySession(Session):
    """A session whose transport is a list of written chunks."""

    __slots__ = ("is_closed", "written")

    def __init__(self, gateway: Gateway, peer: str = "10.0.0.1:5000") -> None:
        super().__init__(gateway, peer)
        self.written: list[bytes] = []
        self.is_closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_buffer_size(self) -> int:
        return 0

    def close_transport(self) -> None:
        self.is_closed = True

    def set_reading(self, enabled: bool) -> None:
        pass

    def frames(self) -> list[FrameReceived]:
        client = Connection(Role.CLIENT)
        client.send(pb.Connect())
        events = client.receive_data(b"".join(self.written))
        return [event for event in events if isinstance(event, FrameReceived)]


def make_gateway(**overrides: object) -> tuple[Gateway, InProcessBus]:
    settings = Settings(heartbeat=10, auth_timeout=5, **overrides)  # type: ignore[arg-type]
    bus = InProcessBus()
    gateway = Gateway("test", settings, bus)
    bus.subscribe_outbound("test", gateway._on_outbound)

    async def accept(item: Inbound) -> None:
        if item.frame_type == FrameType.CONNECT:
            connected = pb.Connected(user_id=7, heartbeat=10)
            bus.publish_outbound(
                Outbound(
                    item.endpoint,
                    encode(connected),
                    Action.ACCEPT,
                    user_id=UserId(7),
                    device=DeviceId("phone"),
                    heartbeat=10,
                )
            )

    bus.subscribe_inbound(accept)
    return gateway, bus


async def connect(gateway: Gateway) -> MemorySession:
    session = MemorySession(gateway)
    assert session.opened()
    session.receive_data(encode(pb.Connect(version=1, token="t", device="phone")))
    await asyncio.sleep(0)  # let the session forward the Connect
    assert session.authenticated
    return session


def ticks_until_closed(gateway: Gateway, session: MemorySession, limit: int) -> int:
    for tick in range(1, limit + 1):
        gateway.tick()
        if session.is_closed:
            return tick
    raise AssertionError(f"still open after {limit} ticks")


async def test_silent_connection_closed_after_timeout_plus_one_tick() -> None:
    gateway, _ = make_gateway()
    session = await connect(gateway)
    # Heartbeat 10 s: timeout 15 ticks, plus the partly elapsed current tick.
    assert ticks_until_closed(gateway, session, 40) == 16
    error = session.frames()[-1].message
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.HEARTBEAT_TIMEOUT
    assert error.fatal
    assert len(gateway) == 0


async def test_heartbeats_postpone_the_close() -> None:
    gateway, _ = make_gateway()
    session = await connect(gateway)
    for _ in range(10):
        for _ in range(14):
            gateway.tick()
        session.receive_data(b"\x00")
    assert not session.is_closed
    assert session.written.count(b"\x00") == 10
    assert ticks_until_closed(gateway, session, 40) == 16


async def test_negotiated_interval_sets_the_timeout() -> None:
    gateway, _ = make_gateway()
    session = await connect(gateway)
    session.receive_data(encode(pb.Heartbeat(interval=100)))
    reply = session.frames()[-1].message
    assert isinstance(reply, pb.Heartbeat)
    assert reply.interval == 100
    assert ticks_until_closed(gateway, session, 400) == 151


async def test_interval_zero_restores_the_default() -> None:
    gateway, _ = make_gateway()
    session = await connect(gateway)
    session.receive_data(encode(pb.Heartbeat(interval=100)))
    session.receive_data(encode(pb.Heartbeat(interval=0)))
    reply = session.frames()[-1].message
    assert isinstance(reply, pb.Heartbeat)
    assert reply.interval == 10
    assert ticks_until_closed(gateway, session, 40) == 16


async def test_unauthenticated_connection_closed_at_auth_deadline() -> None:
    gateway, _ = make_gateway()
    session = MemorySession(gateway)
    assert session.opened()
    for _ in range(4):
        gateway.tick()
        session.receive_data(b"\x00")  # heartbeats do not extend the deadline
    assert ticks_until_closed(gateway, session, 10) == 2
    error = session.frames()[-1].message
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.AUTH_TIMEOUT


async def test_per_address_connection_cap() -> None:
    gateway, _ = make_gateway(max_connections_per_ip=2)
    first, second = MemorySession(gateway), MemorySession(gateway)
    assert first.opened()
    assert second.opened()
    third = MemorySession(gateway)
    assert not third.opened()
    assert third.is_closed
    error = third.frames()[-1].message
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.TOO_MANY_CONNECTIONS
    other = MemorySession(gateway, peer="10.0.0.2:5000")
    assert other.opened()
    first.close("test")
    assert MemorySession(gateway).opened()


async def test_interval_request_before_connected_waits() -> None:
    gateway, _ = make_gateway()
    session = MemorySession(gateway)
    assert session.opened()
    # Connect and HeartbeatInterval in one read: the reply follows Connected.
    session.receive_data(
        encode(pb.Connect(version=1, token="t", device="phone"))
        + encode(pb.Heartbeat(interval=40))
    )
    await asyncio.sleep(0)
    types = [frame.type for frame in session.frames()]
    assert types == [FrameType.CONNECTED, FrameType.HEARTBEAT_INTERVAL]
    assert session.heartbeat == 40
    assert ticks_until_closed(gateway, session, 100) == 61


async def test_churn_summary_replaces_connection_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, _ = make_gateway()
    caplog.set_level(logging.INFO)
    first = await connect(gateway)
    await connect(gateway)
    first.close("peer closed")

    assert [record.getMessage() for record in caplog.records] == []
    gateway.log_churn()
    assert [record.getMessage() for record in caplog.records] == [
        "gateway test in the last 60 s: 2 connections opened, 2 authenticated,"
        " 1 closed; 1 open"
    ]

    caplog.clear()
    gateway.log_churn()
    assert caplog.records == []
