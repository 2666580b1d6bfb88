"""Shared pytest fixtures for tests that run a real server process.

Import them into a conftest.py: ``from tests.support.fixtures import *``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rawclient import close_all
from tests.support.server import ServerProcess

__all__ = ["close_raw_clients", "raw_server"]

SHORT_TIMEOUTS = {
    "SWITCHBOARD_HEARTBEAT": "2",
    "SWITCHBOARD_MIN_HEARTBEAT": "1",
    "SWITCHBOARD_AUTH_TIMEOUT": "2",
    "SWITCHBOARD_HTTP_BODY_TIMEOUT": "2",
    "SWITCHBOARD_MAX_FRAME_SIZE": "4096",
    "SWITCHBOARD_MAX_BODY_SIZE": "3800",
    "SWITCHBOARD_OUTBOUND_LIMIT": "65536",
    "SWITCHBOARD_SEND_RATE": "0",
    "SWITCHBOARD_FRAME_RATE": "0",
}


@pytest.fixture(autouse=True)
def close_raw_clients() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def raw_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with short timeouts and small limits, for protocol-level tests.

    Heartbeat 2 s (so a 3 s timeout), auth and HTTP body timeouts 2 s, frames up to 4096
    bytes, bodies up to 3800 bytes, 64 KiB of unread output per client, and
    no send or read rate limits, so tests can pipeline thousands of frames.
    """
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", SHORT_TIMEOUTS)
    server.start()
    yield server
    server.terminate()
