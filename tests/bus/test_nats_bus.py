"""The NATS bus: partition ownership, takeover after a crash, failures."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from switchboard.bus.base import Action, Endpoint, Inbound, Outbound
from switchboard.bus.nats import NatsBus, partition_of
from switchboard.errors import ErrorCode
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from switchboard.protocol.framing import FrameDecoder
from tests.support.nats import (
    NATS_URL,
    delete_namespace_sync,
    new_namespace,
    start_nats,
)
from tests.support.nats_server import NatsServer
from tests.support.waiting import eventually, eventually_async

WORKER_SCRIPT = Path(__file__).with_name("nats_worker.py")
LEASE_TTL_S = 1.5


@pytest.fixture(scope="module", autouse=True)
def nats_server() -> None:
    start_nats()


@pytest.fixture
def namespace() -> Iterator[str]:
    name = new_namespace()
    yield name
    delete_namespace_sync(name)


async def connect(namespace: str) -> NatsBus:
    return await NatsBus.connect(NATS_URL, namespace, lease_ttl_s=LEASE_TTL_S)


def frame(number: int, user: int = 5) -> Inbound:
    return Inbound(
        Endpoint("gw-a", ConnectionId(1)),
        FrameType.SYNC,
        number.to_bytes(4, "big"),
        UserId(user),
        DeviceId("phone"),
        0,
        "127.0.0.1:1",
    )


def test_partition_of_user_and_connect() -> None:
    assert partition_of(frame(1, user=37), 16) == 37 % 16
    connect = frame(1, user=0)
    assert partition_of(connect, 16) == partition_of(connect, 16)
    assert 0 <= partition_of(connect, 16) < 16


async def test_workers_share_partitions(namespace: str) -> None:
    async def ignore(item: Inbound) -> None:
        return None

    first = await connect(namespace)
    second = await connect(namespace)
    first.subscribe_inbound(ignore)
    second.subscribe_inbound(ignore)
    try:

        def split_evenly() -> bool:
            mine, theirs = first.owned_partitions, second.owned_partitions
            return len(mine) == len(theirs) == 8 and not set(mine) & set(theirs)

        await eventually(split_evenly)
        await second.close()
        await eventually(lambda: len(first.owned_partitions) == 16)
    finally:
        await first.close()
        await second.close()


async def test_takeover_redelivers_unsettled_frames_in_order(namespace: str) -> None:
    # A worker in its own process handles frames, settles none and is killed.
    crashed = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER_SCRIPT),
        NATS_URL,
        namespace,
        str(LEASE_TTL_S),
        stdout=asyncio.subprocess.PIPE,
    )
    assert crashed.stdout is not None
    try:
        assert await crashed.stdout.readline() == b"ready\n"
        gateway = await connect(namespace)
        sent = [frame(number, user=number % 3 + 1) for number in range(30)]
        for item in sent:
            await gateway.publish_inbound(item)
        async with asyncio.timeout(20):
            seen = [await crashed.stdout.readline() for _ in sent]
        assert len(seen) == len(sent)
    finally:
        crashed.kill()
        await crashed.wait()

    # Another worker takes its partitions over and gets every frame again.
    received: list[Inbound] = []

    async def record(item: Inbound) -> None:
        received.append(item)

    successor = await connect(namespace)
    successor.subscribe_inbound(record)
    try:
        await eventually(lambda: len(received) >= len(sent))
        for user in (1, 2, 3):
            mine = [item.payload for item in received if item.user_id == user]
            assert mine == [item.payload for item in sent if item.user_id == user]
        # Acknowledged frames leave the work-queue stream.
        await eventually_async(lambda: stream_empty(namespace))
    finally:
        await successor.close()
        await gateway.close()


async def stream_empty(namespace: str) -> bool:
    client = await nats.connect(NATS_URL)
    try:
        info = await client.jetstream().stream_info(f"{namespace}_inbound")
        return info.state.messages == 0
    finally:
        await client.close()


async def test_failed_handler_closes_the_connection(namespace: str) -> None:
    async def fail(item: Inbound) -> None:
        raise RuntimeError("store unreachable")

    gateway = await connect(namespace)
    logic = await connect(namespace)
    delivered: list[Outbound] = []
    gateway.subscribe_outbound("gw-a", delivered.append)
    await gateway.wait_subscribed()
    logic.subscribe_inbound(fail)
    try:
        await gateway.publish_inbound(frame(1))
        await eventually(lambda: len(delivered) == 1)
    finally:
        await gateway.close()
        await logic.close()

    [item] = delivered
    [(frame_type, payload)] = FrameDecoder(1 << 16).feed(item.data)
    assert item.action is Action.CLOSE
    assert frame_type == FrameType.ERROR
    assert pb.Error.FromString(payload).code == ErrorCode.INTERNAL_ERROR


async def test_other_partition_count_is_rejected(namespace: str) -> None:
    first = await connect(namespace)
    try:
        with pytest.raises(ValueError, match="same partition count"):
            await NatsBus.connect(NATS_URL, namespace, partitions=8)
    finally:
        await first.close()


@pytest.mark.parametrize("name", ["", "has.dot", "has space", "x" * 65])
async def test_invalid_namespace_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid namespace"):
        await NatsBus.connect(NATS_URL, name)


async def test_released_partitions_are_not_taken_back(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def ignore(item: Inbound) -> None:
        return None

    # Longer leases than elsewhere: on a loaded machine, a worker that misses
    # a renewal of its own key drops out of the count for a moment.
    lease_ttl_s = 3.0
    caplog.set_level(logging.INFO, logger="switchboard.bus")
    first = await NatsBus.connect(
        NATS_URL, namespace, worker="first", lease_ttl_s=lease_ttl_s
    )
    first.subscribe_inbound(ignore)
    await eventually(lambda: len(first.owned_partitions) == 16)
    second = await NatsBus.connect(NATS_URL, namespace, lease_ttl_s=lease_ttl_s)
    second.subscribe_inbound(ignore)
    try:
        await eventually(lambda: len(second.owned_partitions) == 8)
        # Several renewal rounds later, the split still holds.
        await asyncio.sleep(lease_ttl_s * 2)
        assert len(first.owned_partitions) == 8
        assert len(second.owned_partitions) == 8
    finally:
        await first.close()
        await second.close()

    claims = [r for r in caplog.messages if r.startswith("logic worker first claimed")]
    assert len(claims) == 16


async def test_bus_recovers_after_nats_restart(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)
    await asyncio.to_thread(server.start)
    received: list[Inbound] = []

    async def record(item: Inbound) -> None:
        received.append(item)

    gateway = await NatsBus.connect(server.url, "restart", lease_ttl_s=LEASE_TTL_S)
    logic = await NatsBus.connect(server.url, "restart", lease_ttl_s=LEASE_TTL_S)
    logic.subscribe_inbound(record)
    try:
        await gateway.publish_inbound(frame(1))
        await eventually(lambda: len(received) == 1)

        # Frames published while NATS restarts are retried, then handled.
        await asyncio.to_thread(server.kill)
        late = asyncio.create_task(gateway.publish_inbound(frame(2)))
        await asyncio.sleep(LEASE_TTL_S * 2)  # past the partition leases
        await asyncio.to_thread(server.start)
        await late
        await gateway.publish_inbound(frame(3))
        await eventually(lambda: len(received) >= 3, within=30)
    finally:
        await gateway.close()
        await logic.close()
        server.kill()

    assert [item.payload for item in received] == [frame(n).payload for n in (1, 2, 3)]
