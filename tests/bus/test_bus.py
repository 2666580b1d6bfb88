"""Buses: the same behaviour in process and over NATS JetStream.

Over NATS the gateway side and the logic side are separate bus instances
with their own connections, as they are in separate processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from switchboard.bus.base import Action, Bus, Endpoint, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.routing import MemoryRoutingTable
from switchboard.protocol import pb
from switchboard.protocol.frames import PROTOCOL_VERSION, FrameType
from switchboard.protocol.framing import FrameDecoder
from switchboard.store.sqlite import SqliteStore
from tests.support.nats import (
    NATS_URL,
    delete_namespace_sync,
    new_namespace,
    start_nats,
)
from tests.support.waiting import eventually


@dataclass
class Buses:
    """The bus a gateway publishes on and the one the logic layer consumes."""

    gateway: Bus
    logic: Bus


async def nats_bus(namespace: str) -> Bus:
    from switchboard.bus.nats import NatsBus

    return await NatsBus.connect(NATS_URL, namespace, lease_ttl_s=1.5)


@pytest.fixture(scope="session")
def nats_server() -> None:
    start_nats()


@pytest.fixture
def namespace(nats_server: None) -> Iterator[str]:
    name = new_namespace()
    yield name
    delete_namespace_sync(name)


@pytest.fixture(params=["memory", "nats"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[Buses]:
    if request.param == "memory":
        bus = InProcessBus()
        yield Buses(bus, bus)
        await bus.close()
        return

    namespace: str = request.getfixturevalue("namespace")
    gateway = await nats_bus(namespace)
    logic = await nats_bus(namespace)
    yield Buses(gateway, logic)
    await gateway.close()
    await logic.close()


async def subscribed(bus: Bus) -> None:
    """Wait until the bus's subscriptions are active (immediate in process)."""
    wait = getattr(bus, "wait_subscribed", None)
    if wait is not None:
        await wait()


def frame(gateway: str, connection: int, number: int, user: int = 0) -> Inbound:
    return Inbound(
        Endpoint(gateway, ConnectionId(connection)),
        FrameType.SYNC,
        number.to_bytes(4, "big"),
        UserId(user),
        DeviceId(f"device-{connection}"),
        pb.PLATFORM_IOS,
        f"127.0.0.1:{40000 + connection}",
    )


# Behaviour of every bus.


async def test_inbound_keeps_order_per_connection(buses: Buses) -> None:
    received: list[Inbound] = []

    async def handle(item: Inbound) -> None:
        received.append(item)

    buses.logic.subscribe_inbound(handle)
    sent = []
    for number in range(60):
        # Connects (user 0) and authenticated frames of several users.
        for connection, user in ((1, 0), (2, 7), (3, 8)):
            item = frame("gw-a", connection, number, user)
            sent.append(item)
            await buses.gateway.publish_inbound(item)

    await eventually(lambda: len(received) >= len(sent))
    assert sorted(received, key=sent.index) == sent
    for connection in (1, 2, 3):
        mine = [item for item in received if item.endpoint.connection == connection]
        assert mine == [item for item in sent if item.endpoint.connection == connection]


async def test_outbound_reaches_only_its_gateway(buses: Buses) -> None:
    first: list[Outbound] = []
    second: list[Outbound] = []
    buses.gateway.subscribe_outbound("gw-a", first.append)
    buses.gateway.subscribe_outbound("gw-b", second.append)
    await subscribed(buses.gateway)
    accept = Outbound(
        Endpoint("gw-a", ConnectionId(3)),
        b"connected",
        Action.ACCEPT,
        user_id=UserId(9),
        device=DeviceId("phone"),
        heartbeat=45,
    )
    close = Outbound(
        Endpoint("gw-b", ConnectionId(4)), b"bye", Action.CLOSE, reason="replaced"
    )

    buses.logic.publish_outbound(accept)
    buses.logic.publish_outbound(close)
    buses.logic.publish_outbound(Outbound(Endpoint("gw-gone", ConnectionId(1)), b"x"))

    await eventually(lambda: len(first) + len(second) >= 2)
    await asyncio.sleep(0.1)
    assert first == [accept]
    assert second == [close]


async def test_outbound_keeps_order(buses: Buses) -> None:
    received: list[Outbound] = []
    buses.gateway.subscribe_outbound("gw-a", received.append)
    await subscribed(buses.gateway)
    sent = [
        Outbound(Endpoint("gw-a", ConnectionId(1)), n.to_bytes(4, "big"))
        for n in range(500)
    ]

    for item in sent:
        buses.logic.publish_outbound(item)

    await eventually(lambda: len(received) >= len(sent))
    assert received == sent


async def test_unsubscribed_gateway_gets_nothing(buses: Buses) -> None:
    received: list[Outbound] = []
    buses.gateway.subscribe_outbound("gw-a", received.append)
    await subscribed(buses.gateway)
    buses.logic.publish_outbound(Outbound(Endpoint("gw-a", ConnectionId(1)), b"1"))
    await eventually(lambda: len(received) == 1)

    buses.gateway.unsubscribe_outbound("gw-a")
    await subscribed(buses.gateway)
    buses.logic.publish_outbound(Outbound(Endpoint("gw-a", ConnectionId(1)), b"2"))
    await asyncio.sleep(0.3)

    assert [item.data for item in received] == [b"1"]


async def test_chat_round_trip(buses: Buses, tmp_path: Path) -> None:
    """A Connect and a Send through the bus: Connected, SendAck and a push."""
    settings = Settings(data_dir=tmp_path, send_rate=0)
    store = SqliteStore(tmp_path / "switchboard.db")
    await store.open()
    auth = AuthService(store, settings)
    chat = ChatService(settings, store, buses.logic, MemoryRoutingTable(), auth)
    chat.start()
    delivered: list[Outbound] = []
    buses.gateway.subscribe_outbound("gw-a", delivered.append)
    await subscribed(buses.gateway)
    try:
        await auth.create_account("ann", "password-of-ann")
        bob = await auth.create_account("bob", "password-of-bob")
        login = await auth.login("bob", "password-of-bob", "phone", "ios", "")
        ann = await auth.login("ann", "password-of-ann", "laptop", "cli", "")

        await buses.gateway.publish_inbound(connect_frame(1, login.token, "phone"))
        await eventually(lambda: any(i.action is Action.ACCEPT for i in delivered))
        send = pb.Send(to=bob.id, client_id=1, body=b"hello")
        await buses.gateway.publish_inbound(
            Inbound(
                Endpoint("gw-a", ConnectionId(2)),
                FrameType.SEND,
                send.SerializeToString(),
                ann.session.user_id,
                DeviceId("laptop"),
                0,
                "127.0.0.1:2",
            )
        )
        await eventually(lambda: len(frames_of(delivered, 1)) >= 2)
        await eventually(lambda: len(frames_of(delivered, 2)) >= 1)
    finally:
        await chat.wait_idle()
        await buses.logic.close()
        await store.close()

    connected_type, _ = frames_of(delivered, 1)[0]
    push_type, push = frames_of(delivered, 1)[1]
    [(ack_type, ack)] = frames_of(delivered, 2)
    assert connected_type == FrameType.CONNECTED
    assert push_type == FrameType.MESSAGE
    assert pb.Message.FromString(push).body == b"hello"
    assert ack_type == FrameType.SEND_ACK
    assert pb.SendAck.FromString(ack).client_id == 1


def connect_frame(connection: int, token: str, device: str) -> Inbound:
    connect = pb.Connect(version=PROTOCOL_VERSION, token=token, device=device)
    return Inbound(
        Endpoint("gw-a", ConnectionId(connection)),
        FrameType.CONNECT,
        connect.SerializeToString(),
        UserId(0),
        DeviceId(""),
        0,
        f"127.0.0.1:{connection}",
    )


def frames_of(items: list[Outbound], connection: int) -> list[tuple[int, bytes]]:
    decoder = FrameDecoder(1 << 20)
    data = b"".join(i.data for i in items if i.endpoint.connection == connection)
    return decoder.feed(data)
