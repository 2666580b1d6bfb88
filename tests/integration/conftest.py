"""Fixtures for end-to-end tests: a real server process and SDK clients.

``server`` runs ``python -m switchboard serve`` on free ports of 127.0.0.1
with a fresh data directory; it has ``base_url``, ``tcp_address``,
``data_dir``, ``pid``, ``kill()``, ``terminate()``, ``start()`` and
``restart()``. Teardown sends SIGTERM, then SIGKILL after 15 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from switchboard.client import (
    Client,
    ClientOptions,
    ClientState,
    MemoryStateStore,
    StateStore,
    TransportFactory,
)
from switchboard.client.transport import open_transport
from tests.support.server import ServerProcess

__all__ = ["ClientFactory", "clients", "password_of", "server"]


def password_of(name: str) -> str:
    return f"password-of-{name}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    process.start()
    yield process
    process.terminate()
    # Shown only when the test fails.
    print("server log tail:\n" + process.log()[-4000:])


class ClientFactory(Protocol):
    def __call__(
        self,
        name: str,
        device: str = "d1",
        *,
        transport: str = "tcp",
        connect: bool = True,
        store: StateStore | None = None,
        open_transport: TransportFactory = open_transport,
        platform: str = "cli",
    ) -> Awaitable[Client]: ...


@pytest.fixture
async def clients(server: ServerProcess) -> AsyncIterator[ClientFactory]:
    """Make logged-in clients (accounts are created on first use); closed after."""
    made: list[Client] = []
    accounts: set[str] = set()

    async def make(
        name: str,
        device: str = "d1",
        *,
        transport: str = "tcp",
        connect: bool = True,
        store: StateStore | None = None,
        open_transport: TransportFactory = open_transport,
        platform: str = "cli",
    ) -> Client:
        client = Client(
            server.base_url,
            state=store or MemoryStateStore(ClientState()),
            options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
            open_transport=open_transport,
        )
        made.append(client)
        if name not in accounts:
            await client.create_account(name, password_of(name))
            accounts.add(name)
        await client.login(name, password_of(name), device=device, platform=platform)
        if connect:
            await client.connect(transport, timeout=10)
        return client

    yield make
    for client in made:
        await client.close()
