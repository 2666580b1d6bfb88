from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rawclient import close_all
from tests.support.server import ServerProcess


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def raw_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with short timeouts, for protocol-level tests."""
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        env={
            "SWITCHBOARD_HEARTBEAT": "2",
            "SWITCHBOARD_MIN_HEARTBEAT": "1",
            "SWITCHBOARD_AUTH_TIMEOUT": "2",
            "SWITCHBOARD_MAX_FRAME_SIZE": "4096",
            "SWITCHBOARD_MAX_BODY_SIZE": "3800",
            "SWITCHBOARD_OUTBOUND_LIMIT": "65536",
        },
    )
    server.start()
    yield server
    server.terminate()
