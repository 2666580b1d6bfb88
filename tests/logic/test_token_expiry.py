"""Login tokens expire after SWITCHBOARD_TOKEN_TTL seconds."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess


def test_expired_token_is_rejected(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data", tmp_path / "server.log", {"SWITCHBOARD_TOKEN_TTL": "2"}
    )
    server.start()
    try:
        _, token = create_user(server.base_url, "ann")
        fresh = RawClient(server.tcp_address)
        assert fresh.connect(token).user_id > 0
        fresh.close()
        time.sleep(2.2)
        client = RawClient(server.tcp_address)
        client.send(pb.Connect(version=1, token=token, device="dev1"))
        error = client.expect(FrameType.ERROR)
        assert isinstance(error, pb.Error)
        assert error.code == ErrorCode.UNAUTHORIZED
        assert "expired" in error.reason
        client.expect_closed()
        response = httpx.get(
            server.base_url + "/v1/users/ann",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]
    finally:
        server.terminate()
