"""Typing indicators and presence at the frame level, against a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess

PRESENCE_INTERVAL = 1.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        **SHORT_TIMEOUTS,
        "SWITCHBOARD_HEARTBEAT": "30",
        "SWITCHBOARD_PRESENCE_INTERVAL": str(PRESENCE_INTERVAL),
        "SWITCHBOARD_TYPING_RATE": "2",
        "SWITCHBOARD_TYPING_BURST": "3",
    }
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log", env)
    process.start()
    yield process
    process.terminate()


Users = dict[str, tuple[int, str]]


@pytest.fixture
def users(server: ServerProcess) -> Users:
    """alice and bob wrote to each other; carol only wrote to alice."""
    made = {
        name: create_user(server.base_url, name) for name in ("alice", "bob", "carol")
    }
    for sender, to in (("alice", "bob"), ("bob", "alice"), ("carol", "alice")):
        post(server, made[sender][1], to=to, text=f"hi {to}")
    return made


def post(server: ServerProcess, token: str, **body: object) -> None:
    body.setdefault("client_id", int(time.monotonic_ns() % 2**62) + 1)
    response = httpx.post(
        server.base_url + "/v1/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text


def online(
    server: ServerProcess, users: Users, name: str, device: str = "dev1"
) -> RawClient:
    """Connect a device of ``name``; devices other than dev1 log in first."""
    token = users[name][1]
    if device != "dev1":
        response = httpx.post(
            server.base_url + "/v1/sessions",
            json={"name": name, "password": f"password-{name}", "device": device},
        )
        token = response.json()["token"]
    client = RawClient(server.tcp_address)
    client.connect(token, device=device)
    return client


def next_frame(
    client: RawClient, frame_type: FrameType, timeout: float = 5.0
) -> object:
    """Return the next frame of the type, passing over pushed messages."""
    return client.expect(frame_type, timeout=timeout, skip=(FrameType.MESSAGE,))


def assert_nothing(client: RawClient, within: float = 0.5) -> None:
    deadline = time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            event = client.receive(timeout=remaining)
        except TimeoutError:
            return
        assert event is None, f"unexpected {event.type.name}"


# Typing.


def test_typing_reaches_every_device_of_peer(
    server: ServerProcess, users: Users
) -> None:
    alice = online(server, users, "alice")
    alice_tablet = online(server, users, "alice", "dev2")
    bob_phone = online(server, users, "bob")
    bob_laptop = online(server, users, "bob", "dev2")

    alice.send(pb.Typing(to=users["bob"][0], active=True))
    for device in (bob_phone, bob_laptop):
        typing = next_frame(device, FrameType.TYPING)
        assert isinstance(typing, pb.Typing)
        assert (typing.sender, typing.active, typing.ttl) == (
            users["alice"][0],
            True,
            6,
        )
        assert (typing.to, typing.group) == (0, 0)
    alice.send(pb.Typing(to=users["bob"][0], active=False))
    stopped = next_frame(bob_phone, FrameType.TYPING)
    assert isinstance(stopped, pb.Typing)
    assert (stopped.active, stopped.ttl) == (False, 0)
    assert_nothing(alice_tablet)
    assert_nothing(alice)


def test_typing_is_never_stored(server: ServerProcess, users: Users) -> None:
    alice = online(server, users, "alice")
    alice.send(pb.Typing(to=users["bob"][0], active=True))
    assert_nothing(alice)
    # bob was offline: connecting later brings only the stored messages.
    bob = RawClient(server.tcp_address)
    connected = bob.connect(users["bob"][1])
    assert connected.head_seq == 2
    assert [m.body for m in connected.sync.messages] == [b"hi bob", b"hi alice"]
    assert_nothing(bob)


def test_typing_only_to_mutual_peers(server: ServerProcess, users: Users) -> None:
    carol = online(server, users, "carol")
    alice = online(server, users, "alice")
    # carol wrote to alice, but alice never answered: not peers either way.
    carol.send(pb.Typing(to=users["alice"][0], active=True))
    error = next_frame(carol, FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.FORBIDDEN
    assert not error.fatal
    alice.send(pb.Typing(to=users["carol"][0], active=True))
    assert next_frame(alice, FrameType.ERROR).code == ErrorCode.FORBIDDEN  # type: ignore[attr-defined]
    carol.send(pb.Typing(to=999_999, active=True))
    assert next_frame(carol, FrameType.ERROR).code == ErrorCode.FORBIDDEN  # type: ignore[attr-defined]
    assert_nothing(alice)
    # The connection keeps working.
    carol.send(pb.Send(to=users["alice"][0], client_id=5, body=b"still here"))
    assert next_frame(carol, FrameType.SEND_ACK).client_id == 5  # type: ignore[attr-defined]


def test_typing_in_group(server: ServerProcess, users: Users) -> None:
    response = httpx.post(
        server.base_url + "/v1/groups",
        json={"name": "team", "members": ["bob", "carol"]},
        headers={"Authorization": f"Bearer {users['alice'][1]}"},
    )
    group_id = response.json()["id"]
    alice, bob, carol = (online(server, users, n) for n in ("alice", "bob", "carol"))
    dave_id, dave_token = create_user(server.base_url, "dave")
    dave = RawClient(server.tcp_address)
    dave.connect(dave_token)

    carol.send(pb.Typing(group=group_id, active=True))
    for member in (alice, bob):
        typing = next_frame(member, FrameType.TYPING)
        assert isinstance(typing, pb.Typing)
        assert (typing.sender, typing.group) == (users["carol"][0], group_id)
    assert_nothing(carol)

    dave.send(pb.Typing(group=group_id, active=True))
    assert next_frame(dave, FrameType.ERROR).code == ErrorCode.NOT_A_MEMBER  # type: ignore[attr-defined]
    dave.send(pb.Typing(group=group_id + 100, active=True))
    assert next_frame(dave, FrameType.ERROR).code == ErrorCode.GROUP_NOT_FOUND  # type: ignore[attr-defined]
    dave.send(pb.Typing(group=group_id, to=users["alice"][0], active=True))
    assert next_frame(dave, FrameType.ERROR).code == ErrorCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert_nothing(alice)
    assert dave_id > 0


def test_typing_rate_is_limited(server: ServerProcess, users: Users) -> None:
    alice = online(server, users, "alice")
    bob = online(server, users, "bob")
    for _ in range(20):
        alice.send(pb.Typing(to=users["bob"][0], active=True))
    time.sleep(0.5)
    received = bob.drain()
    # A burst of 3, plus about one more at 2 a second while the frames arrive.
    assert 3 <= received <= 5
    assert_nothing(alice)


# Presence.


def presence_of(update: object) -> dict[int, tuple[bool, int]]:
    assert isinstance(update, pb.PresenceUpdate)
    return {p.user: (p.online, p.last_seen) for p in update.users}


def test_subscribe_reports_peers_and_self(server: ServerProcess, users: Users) -> None:
    bob = online(server, users, "bob")
    alice_id, bob_id, carol_id = (users[n][0] for n in ("alice", "bob", "carol"))
    bob.send(pb.PresenceSubscribe(users=[alice_id, carol_id, bob_id, 999_999]))

    reply = presence_of(next_frame(bob, FrameType.PRESENCE))
    # carol wrote to nobody who answered, and 999999 does not exist.
    assert reply == {alice_id: (False, 0), bob_id: (True, 0)}


def test_presence_changes_reach_watchers(server: ServerProcess, users: Users) -> None:
    alice_id = users["alice"][0]
    bob = online(server, users, "bob")
    carol = online(server, users, "carol")
    bob.send(pb.PresenceSubscribe(users=[alice_id]))
    carol.send(pb.PresenceSubscribe(users=[alice_id]))
    next_frame(bob, FrameType.PRESENCE)
    assert presence_of(next_frame(carol, FrameType.PRESENCE)) == {}

    before = time.time_ns() // 1_000_000  # whole ms, as the server stores it
    alice = online(server, users, "alice")
    assert presence_of(next_frame(bob, FrameType.PRESENCE)) == {alice_id: (True, 0)}
    alice.close()
    [(is_online, last_seen)] = presence_of(next_frame(bob, FrameType.PRESENCE)).values()
    assert not is_online
    assert before <= last_seen <= time.time() * 1000
    # carol is no peer of alice and hears nothing.
    assert_nothing(carol)


def test_flapping_connection_is_merged(server: ServerProcess, users: Users) -> None:
    alice_id = users["alice"][0]
    bob = online(server, users, "bob")
    bob.send(pb.PresenceSubscribe(users=[alice_id]))
    next_frame(bob, FrameType.PRESENCE)

    started = time.monotonic()
    for _ in range(5):
        online(server, users, "alice").close()
        time.sleep(0.05)
    updates = []
    while time.monotonic() - started < 3 * PRESENCE_INTERVAL + 1:
        try:
            updates.append(presence_of(next_frame(bob, FrameType.PRESENCE, 0.5)))
        except TimeoutError:
            continue
    # The first connect is sent at once; the rest within the interval merge.
    assert 1 <= len(updates) <= 3
    assert updates[-1][alice_id][0] is False


def test_subscribing_too_many_users(server: ServerProcess, users: Users) -> None:
    bob = online(server, users, "bob")
    bob.send(pb.PresenceSubscribe(users=range(1, 502)))
    error = next_frame(bob, FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.INVALID_ARGUMENT
    assert "at most 500" in error.reason
    assert not error.fatal


def test_last_seen_survives_restart(server: ServerProcess, users: Users) -> None:
    alice_id = users["alice"][0]
    online(server, users, "alice").close()
    time.sleep(0.3)
    seen_before_restart = time.time() * 1000
    server.terminate()
    server.start()

    bob = online(server, users, "bob")
    bob.send(pb.PresenceSubscribe(users=[alice_id]))
    [(is_online, last_seen)] = presence_of(next_frame(bob, FrameType.PRESENCE)).values()
    assert not is_online
    assert 0 < last_seen <= seen_before_restart
