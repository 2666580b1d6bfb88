"""Shutdown drain: every TCP and WebSocket client is told to reconnect."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from websockets.sync.client import connect as ws_connect

from switchboard.gateway.gateway import spread_delays
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def test_sigterm_tells_every_client_to_reconnect(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        env={"SWITCHBOARD_DRAIN_WINDOW": "3"},
    )
    server.start()
    try:
        user_id, token = create_user(server.base_url, "ann", device="tcp")
        tcp_clients = [RawClient(server.tcp_address) for _ in range(3)]
        for index, client in enumerate(tcp_clients):
            # One authenticated connection per device, and two that never
            # sent Connect.
            if index == 0:
                client.connect(token, device="tcp")
        _, ws_token = create_user(server.base_url, "bob", device="ws")
        ws_url = f"ws://127.0.0.1:{server.http_port}/v1/ws"
        websocket = ws_connect(ws_url, legacy=True)
        ws_protocol = Connection(Role.CLIENT)
        websocket.send(
            ws_protocol.send(pb.Connect(version=1, token=ws_token, device="ws"))
        )
        events = ws_protocol.receive_data(websocket.recv(timeout=5))
        assert isinstance(events[0], FrameReceived)
        assert events[0].type is FrameType.CONNECTED

        server.terminate()

        for client in tcp_clients:
            frame = client.expect(FrameType.RECONNECT)
            assert isinstance(frame, pb.Reconnect)
            assert 0 <= frame.delay <= 3000
            assert frame.reason
            client.expect_closed()
        ws_events = ws_protocol.receive_data(websocket.recv(timeout=5))
        assert isinstance(ws_events[0], FrameReceived)
        assert ws_events[0].type is FrameType.RECONNECT
        assert server.process is not None
        assert server.process.returncode == 0
        assert user_id > 0
    finally:
        server.kill()


def test_spread_delays_fill_each_slot_once() -> None:
    count, window = 1000, 8.0
    delays = spread_delays(count, window, random.Random(7))

    assert len(delays) == count
    assert all(0 <= delay < window * 1000 for delay in delays)
    # Each tenth of the window contains a tenth of the delays, give or take one.
    tenths = Counter(int(delay // (window * 100)) for delay in delays)
    assert sorted(tenths) == list(range(10))
    assert all(abs(tenths[part] - count // 10) <= 1 for part in range(10))
    # The order is shuffled, so neighbouring connections do not reconnect
    # together.
    assert delays != sorted(delays)


def test_spread_delays_of_no_connections() -> None:
    assert spread_delays(0, 5.0) == []
