"""Statistics on a real server: /metrics, the admin API and the drain action."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    environ = SHORT_TIMEOUTS | {
        "SWITCHBOARD_ADMINS": "root",
        "SWITCHBOARD_STATS_INTERVAL": "0.2",
    }
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log", environ)
    process.start()
    yield process
    process.terminate()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[str, ...]], float]:
    """Return every sample of /metrics by (name, label values)."""
    response = httpx.get(server.base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, tuple(sample.labels.values()))
            samples[key] = sample.value
    return samples


def send_and_wait(client: RawClient, to: int, count: int) -> None:
    for client_id in range(1, count + 1):
        client.send(pb.Send(to=to, client_id=client_id, body=b"hi"))
    for _ in range(count):
        client.expect(FrameType.SEND_ACK)


def admin_token(server: ServerProcess) -> str:
    admin_key = (server.data_dir / "admin.key").read_bytes()
    return create_user(server.base_url, "root", admin_key=admin_key)[1]


def test_metrics_count_the_traffic(server: ServerProcess) -> None:
    _, ann = create_user(server.base_url, "ann")
    bob_id, bob = create_user(server.base_url, "bob")
    create_user(server.base_url, "cat")
    sender = RawClient(server.tcp_address)
    sender.connect(ann, platform=pb.PLATFORM_ANDROID)
    receiver = RawClient(server.tcp_address)
    receiver.connect(bob, platform=pb.PLATFORM_IOS)
    send_and_wait(sender, bob_id, 5)
    for _ in range(5):
        receiver.expect(FrameType.MESSAGE)
    sender.send(pb.Send(to=999_999, client_id=6, body=b"x"))
    assert sender.expect(FrameType.ERROR).code == ErrorCode.UNKNOWN_RECIPIENT
    assert httpx.get(server.base_url + "/v1/users/ann").status_code == 401

    samples = scrape(server)

    assert samples[("switchboard_messages_sent_total", ())] == 5
    assert samples[("switchboard_messages_delivered_total", ())] == 5
    assert samples[("switchboard_syncs_total", ())] == 2
    assert samples[("switchboard_errors_total", ("unknown_recipient",))] == 1
    assert samples[("switchboard_errors_total", ("unauthorized",))] == 1
    assert samples[("switchboard_connections", ("android",))] == 1
    assert samples[("switchboard_connections", ("ios",))] == 1
    assert samples[("switchboard_connections", ("web",))] == 0
    assert samples[("switchboard_users", ())] == 3
    assert samples[("switchboard_active_users", ())] == 2
    assert samples[("switchboard_groups", ())] == 0


def test_metrics_follow_disconnects(server: ServerProcess) -> None:
    _, ann = create_user(server.base_url, "ann")
    client = RawClient(server.tcp_address)
    client.connect(ann, platform=pb.PLATFORM_WEB)
    assert scrape(server)[("switchboard_connections", ("web",))] == 1

    client.sock.close()

    deadline = time.monotonic() + 5
    while scrape(server)[("switchboard_connections", ("web",))] != 0:
        assert time.monotonic() < deadline, "closed connection still counted"
        time.sleep(0.05)
    assert scrape(server)[("switchboard_active_users", ())] == 0


def test_admin_stats_need_an_admin(server: ServerProcess) -> None:
    _, ann = create_user(server.base_url, "ann")
    url = server.base_url + "/v1/admin/stats"

    anonymous = httpx.get(url)
    not_admin = httpx.get(url, headers={"Authorization": f"Bearer {ann}"})

    assert anonymous.status_code == 401
    assert not_admin.status_code == 403
    assert not_admin.json()["error"]["code"] == "forbidden"
    assert "SWITCHBOARD_ADMINS" in not_admin.json()["error"]["message"]


def test_admin_stats_report_figures_and_history(server: ServerProcess) -> None:
    token = admin_token(server)
    _, ann = create_user(server.base_url, "ann")
    bob_id, _ = create_user(server.base_url, "bob")
    client = RawClient(server.tcp_address)
    client.connect(ann, platform=pb.PLATFORM_DESKTOP)
    send_and_wait(client, bob_id, 3)
    time.sleep(0.6)  # at least two history points after the sends

    body = httpx.get(
        server.base_url + "/v1/admin/stats",
        headers={"Authorization": f"Bearer {token}"},
    ).json()

    assert body["users"] == 3
    assert body["messages_sent"] == 3
    assert body["messages_delivered"] == 0  # bob is offline
    assert body["connections"] == 1
    assert body["by_platform"]["desktop"] == 1
    assert body["active_users"] == 1
    [gateway] = body["gateways"]
    assert gateway["connections"] == 1
    assert gateway["draining"] is False
    assert gateway["address"] == f"127.0.0.1:{server.tcp_port}"
    assert gateway["rss_bytes"] > 0
    assert body["sample_interval"] == 0.2
    assert len(body["history"]) >= 2
    assert sum(point["sent_per_second"] for point in body["history"]) > 0


def test_drain_action_tells_clients_to_reconnect(server: ServerProcess) -> None:
    token = admin_token(server)
    headers = {"Authorization": f"Bearer {token}"}
    _, ann = create_user(server.base_url, "ann")
    client = RawClient(server.tcp_address)
    client.connect(ann)
    stats = httpx.get(server.base_url + "/v1/admin/stats", headers=headers).json()
    name = stats["gateways"][0]["name"]
    url = f"{server.base_url}/v1/admin/gateways/{name}/drain"

    refused = httpx.post(url, headers=headers)
    unknown = httpx.post(
        f"{server.base_url}/v1/admin/gateways/nope/drain?force=true", headers=headers
    )
    drained = httpx.post(url + "?force=true", headers=headers)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "last_gateway"
    assert unknown.status_code == 404
    assert drained.status_code == 200
    assert drained.json()["clients_told"] == 1
    reconnect = client.expect(FrameType.RECONNECT)
    assert reconnect.reason == "drained by an admin"
    stats = httpx.get(server.base_url + "/v1/admin/stats", headers=headers).json()
    assert stats["gateways"][0]["draining"] is True
