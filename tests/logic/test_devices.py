"""Several devices of one user: the per-class limit, and delivery to each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchboard.bus.base import Endpoint
from switchboard.errors import ErrorCode
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logic.devices import DevicePolicy, PlatformClass, platform_class
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.rawclient import RawClient, assert_nothing_pending, create_user
from tests.support.server import ServerProcess

ANDROID, IOS, WEB, DESKTOP, CLI = 1, 2, 3, 4, 5
USER = UserId(1)

# The policy on its own.


def endpoint(number: int) -> Endpoint:
    return Endpoint("gw", ConnectionId(number))


def policy(mobile: int = 1, web: int = 0) -> DevicePolicy:
    return DevicePolicy(
        {
            PlatformClass.MOBILE: mobile,
            PlatformClass.WEB: web,
            PlatformClass.DESKTOP: 0,
            PlatformClass.OTHER: 0,
        }
    )


def test_platform_classes() -> None:
    assert platform_class(ANDROID) is PlatformClass.MOBILE
    assert platform_class(IOS) is PlatformClass.MOBILE
    assert platform_class(WEB) is PlatformClass.WEB
    assert platform_class(DESKTOP) is PlatformClass.DESKTOP
    assert platform_class(CLI) is PlatformClass.OTHER
    assert platform_class(0) is PlatformClass.OTHER
    assert platform_class(77) is PlatformClass.OTHER


def test_second_mobile_pushes_out_the_first() -> None:
    devices = policy()
    assert devices.admit(USER, DeviceId("phone"), ANDROID, endpoint(1)) == []

    [eviction] = devices.admit(USER, DeviceId("tablet"), IOS, endpoint(2))

    assert eviction.device == "phone"
    assert eviction.endpoint == endpoint(1)
    assert "at most 1 mobile device(s)" in eviction.reason
    assert "'tablet'" in eviction.reason
    assert devices.online(USER) == ["tablet"]


def test_other_classes_are_not_affected() -> None:
    devices = policy()
    devices.admit(USER, DeviceId("browser"), WEB, endpoint(1))
    devices.admit(USER, DeviceId("laptop"), DESKTOP, endpoint(2))
    devices.admit(USER, DeviceId("phone"), ANDROID, endpoint(3))

    evictions = devices.admit(USER, DeviceId("phone2"), ANDROID, endpoint(4))

    assert [e.device for e in evictions] == ["phone"]
    assert devices.online(USER) == ["browser", "laptop", "phone2"]


def test_oldest_goes_first_with_larger_limit() -> None:
    devices = policy(mobile=2)
    devices.admit(USER, DeviceId("a"), ANDROID, endpoint(1))
    devices.admit(USER, DeviceId("b"), IOS, endpoint(2))
    # A reconnect of "a" makes it the newest.
    assert devices.admit(USER, DeviceId("a"), ANDROID, endpoint(3)) == []

    evictions = devices.admit(USER, DeviceId("c"), IOS, endpoint(4))

    assert [(e.device, e.endpoint) for e in evictions] == [("b", endpoint(2))]
    assert devices.online(USER) == ["a", "c"]


def test_zero_means_no_limit() -> None:
    devices = policy(mobile=0)

    for number in range(10):
        assert devices.admit(USER, DeviceId(f"p{number}"), IOS, endpoint(number)) == []

    assert len(devices.online(USER)) == 10


def test_limits_are_per_user() -> None:
    devices = policy()
    devices.admit(USER, DeviceId("phone"), ANDROID, endpoint(1))

    assert devices.admit(UserId(2), DeviceId("phone"), ANDROID, endpoint(2)) == []


def test_forget_drops_only_the_current_connection() -> None:
    devices = policy()
    devices.admit(USER, DeviceId("phone"), ANDROID, endpoint(1))
    devices.admit(USER, DeviceId("phone"), ANDROID, endpoint(2))

    devices.forget(USER, DeviceId("phone"), endpoint(1))
    assert devices.online(USER) == ["phone"]
    devices.forget(USER, DeviceId("phone"), endpoint(2))
    assert devices.online(USER) == []
    devices.forget(USER, DeviceId("phone"), endpoint(2))


# Against a real server.


def login(server: ServerProcess, name: str, device: str, platform: str) -> str:
    response = httpx.post(
        server.base_url + "/v1/sessions",
        json={
            "name": name,
            "password": "password-" + name,
            "device": device,
            "platform": platform,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def online(server: ServerProcess, token: str, device: str) -> RawClient:
    client = RawClient(server.tcp_address)
    client.connect(token, device=device)
    return client


def test_new_mobile_signs_out_old_mobile(raw_server: ServerProcess) -> None:
    _, bob_token = create_user(raw_server.base_url, "bob")
    alice_id, _ = create_user(raw_server.base_url, "alice")
    phone_token = login(raw_server, "alice", "phone", "android")
    tablet_token = login(raw_server, "alice", "tablet", "ios")
    browser_token = login(raw_server, "alice", "browser", "web")
    laptop_token = login(raw_server, "alice", "laptop", "desktop")
    phone = online(raw_server, phone_token, "phone")
    browser = online(raw_server, browser_token, "browser")
    laptop = online(raw_server, laptop_token, "laptop")

    tablet = online(raw_server, tablet_token, "tablet")

    error = phone.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.SESSION_REPLACED
    assert error.fatal is True
    assert "'tablet'" in error.reason
    assert "mobile" in error.reason
    phone.expect_closed()
    bob = online(raw_server, bob_token, "dev1")
    bob.send(pb.Send(to=alice_id, client_id=1, body=b"still there?"))
    for client in (tablet, browser, laptop):
        message = client.expect(FrameType.MESSAGE)
        assert isinstance(message, pb.Message)
        assert message.body == b"still there?"
    # The phone may log in again and take over from the tablet.
    online(raw_server, phone_token, "phone")
    replaced = tablet.expect(FrameType.ERROR)
    assert isinstance(replaced, pb.Error)
    assert replaced.code == ErrorCode.SESSION_REPLACED
    for client in (browser, laptop):
        assert_nothing_pending(client)


@pytest.fixture
def two_mobiles(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {**SHORT_TIMEOUTS, "SWITCHBOARD_MAX_ONLINE_MOBILE": "2"}
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", env)
    server.start()
    yield server
    server.terminate()


def test_every_device_gets_every_message(two_mobiles: ServerProcess) -> None:
    server = two_mobiles
    bob_id, bob_token = create_user(server.base_url, "bob")
    alice_id, _ = create_user(server.base_url, "alice")
    tokens = {
        "phone": login(server, "alice", "phone", "android"),
        "tablet": login(server, "alice", "tablet", "ios"),
        "browser": login(server, "alice", "browser", "web"),
        "laptop": login(server, "alice", "laptop", "desktop"),
    }
    devices = {name: online(server, token, name) for name, token in tokens.items()}
    bob = online(server, bob_token, "dev1")

    # A message to Alice reaches all four devices with the same seq.
    bob.send(pb.Send(to=alice_id, client_id=1, body=b"hi alice"))
    for client in devices.values():
        message = client.expect(FrameType.MESSAGE)
        assert isinstance(message, pb.Message)
        assert (message.seq, message.body, message.sender) == (1, b"hi alice", bob_id)

    # Alice's reply from the phone reaches her other three devices.
    devices["phone"].send(pb.Send(to=bob_id, client_id=1, body=b"hi bob"))
    ack = devices["phone"].expect(FrameType.SEND_ACK)
    assert isinstance(ack, pb.SendAck)
    for name in ("tablet", "browser", "laptop"):
        own = devices[name].expect(FrameType.MESSAGE)
        assert isinstance(own, pb.Message)
        assert (own.seq, own.id, own.sender) == (ack.seq, ack.id, alice_id)
    for client in devices.values():
        assert_nothing_pending(client)

    # Each device keeps its own cursor: the browser stopped after entry 1.
    devices["browser"].close()
    again = RawClient(server.tcp_address)
    connected = again.connect(tokens["browser"], device="browser", last_seq=1)
    assert [m.seq for m in connected.sync.messages] == [2]
    devices["laptop"].close()
    laptop = RawClient(server.tcp_address)
    connected = laptop.connect(tokens["laptop"], device="laptop", last_seq=2)
    assert list(connected.sync.messages) == []
