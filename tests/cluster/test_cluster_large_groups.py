"""A large group (fan-out on read) in the clustered mode: PostgreSQL, NATS, Redis."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from switchboard.cluster.launcher import LocalCluster
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.nats import start_nats
from tests.support.postgres import start_postgres
from tests.support.rawclient import RawClient, create_user
from tests.support.redis_server import RedisServer

CLUSTER_ENV = {
    "SWITCHBOARD_SEND_RATE": "0",
    "SWITCHBOARD_FRAME_RATE": "0",
    "SWITCHBOARD_LOG_LEVEL": "info",
    "SWITCHBOARD_LARGE_GROUP_THRESHOLD": "3",
}
"""Groups of more than 3 members are large in this module's cluster."""
PER_MEMBER = 5
"""Messages each member sends."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    start_postgres()
    start_nats()
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    local = LocalCluster(
        tmp_path_factory.mktemp("cluster"),
        lease_ttl=3.0,
        env=CLUSTER_ENV,
        redis_url=redis.url,
    )
    local.start()
    yield local
    local.stop()
    redis.kill()
    for process in local.processes:
        print(f"--- {process.name} log tail:\n{process.log_tail(3000)}")


def read_pushes(device: RawClient, pushes: int, acks: int) -> list[pb.Message]:
    """Read ``pushes`` Message frames and ``acks`` SendAcks, in any order."""
    messages: list[pb.Message] = []
    acked = 0
    while len(messages) < pushes or acked < acks:
        event = device.receive(timeout=30)
        if event is None:
            continue
        if event.type is FrameType.MESSAGE:
            assert isinstance(event.message, pb.Message)
            messages.append(event.message)
        else:
            assert event.type is FrameType.SEND_ACK, event
            assert isinstance(event.message, pb.SendAck)
            assert event.message.group_seq > 0
            assert event.message.seq == 0
            acked += 1
    return messages


def test_large_group_across_gateways(cluster: LocalCluster) -> None:
    names = [f"crowd{i}-{secrets.token_hex(3)}" for i in range(4)]
    users = [create_user(cluster.base_url, name, device="phone") for name in names]
    first, second = (("127.0.0.1", g.tcp_port) for g in cluster.gateways)
    phones = [RawClient(first if i < 2 else second, timeout=20) for i in range(4)]
    for phone, (_, token) in zip(phones, users, strict=True):
        phone.connect(token, device="phone")

    response = httpx.post(
        f"{cluster.base_url}/v1/groups",
        json={"name": "crowd", "members": names[1:]},
        headers={"authorization": f"Bearer {users[0][1]}"},
    )
    assert response.status_code == 201, response.text
    group = response.json()["id"]
    for phone in phones:
        notice = phone.expect(FrameType.MESSAGE, timeout=20)
        assert isinstance(notice, pb.Message)
        assert notice.group_seq == 1
        assert notice.seq == 0

    for index, phone in enumerate(phones):
        for client_id in range(1, PER_MEMBER + 1):
            body = f"{index}:{client_id}".encode()
            phone.send(pb.Send(group=group, client_id=client_id, body=body))

    everything = [f"{i}:{c}" for i in range(4) for c in range(1, PER_MEMBER + 1)]
    for index, phone in enumerate(phones):
        others = [body for body in everything if not body.startswith(f"{index}:")]
        pushes = read_pushes(phone, len(others), PER_MEMBER)
        assert Counter(m.body.decode() for m in pushes) == Counter(others)
        assert all(m.seq == 0 and m.group_seq > 1 for m in pushes)

    # Every entry is in the timeline once, in one order for all members.
    pages = []
    for phone in phones:
        phone.send(pb.TimelineSync(group=group, after_seq=0))
        page = phone.expect(FrameType.TIMELINE_PAGE, timeout=20)
        assert isinstance(page, pb.TimelinePage)
        pages.append([(m.group_seq, m.body) for m in page.messages])
    assert [seq for seq, _ in pages[0]] == list(range(1, 2 + len(everything)))
    assert all(page == pages[0] for page in pages)

    for phone in phones:
        # A heartbeat's echo comes next: nothing was delivered twice.
        phone.send_bytes(b"\x00")
        assert phone.receive(timeout=5) is None
        phone.close()
