"""SDK clients chat with a real server through the chaos proxy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from switchboard.chaos import ChaosProxy, FaultSettings
from switchboard.client import (
    Client,
    ClientOptions,
    Gateway,
    Transport,
    TransportFactory,
)
from switchboard.client.transport import TcpTransport
from tests.integration.conftest import ClientFactory
from tests.support.server import ServerProcess


def through(proxy: ChaosProxy) -> TransportFactory:
    async def open_transport(gateway: Gateway) -> Transport:
        return await TcpTransport.open(proxy.address_text)

    return open_transport


async def test_frames_survive_splits_and_coalescing(
    server: ServerProcess, clients: ClientFactory
) -> None:
    faults = FaultSettings(seed=7, split=0.5, coalesce=0.5, jitter=0.01)
    proxy = ChaosProxy(server.tcp_address, faults)
    await proxy.start()
    alice = await clients("alice", open_transport=through(proxy))
    bob = await clients("bob", open_transport=through(proxy))

    texts = [f"message {i} " + "x" * (i * 13 % 400) for i in range(60)]
    sent = await asyncio.gather(*(alice.send(bob.user_id, text) for text in texts))
    received = []
    async with asyncio.timeout(20):
        while len(received) < len(texts):
            received.append(await bob.next_message())

    assert [m.text for m in received] == texts
    assert [m.id for m in received] == [s.id for s in sent]
    assert proxy.counts.splits > 0
    assert proxy.counts.coalesced > 0
    await proxy.close()


async def test_sdk_reconnects_after_reset(
    server: ServerProcess, clients: ClientFactory
) -> None:
    proxy = ChaosProxy(server.tcp_address)
    await proxy.start()
    alice = await clients("alice", open_transport=through(proxy))
    bob = await clients("bob", open_transport=through(proxy))
    await alice.send(bob.user_id, "before")

    assert proxy.reset_all() == 2
    sent = await asyncio.wait_for(alice.send(bob.user_id, "after"), 20)
    texts = []
    async with asyncio.timeout(20):
        while len(texts) < 2:
            texts.append((await bob.next_message()).text)

    assert texts == ["before", "after"]
    assert sent.seq == 2
    assert proxy.counts.resets == 2
    await proxy.close()


async def test_sdk_recovers_from_black_hole(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        {"SWITCHBOARD_HEARTBEAT": "2", "SWITCHBOARD_MIN_HEARTBEAT": "1"},
    )
    await asyncio.to_thread(server.start)
    proxy = ChaosProxy(server.tcp_address)
    await proxy.start()
    options = ClientOptions(echo_timeout=2.0, backoff_base=0.05, backoff_cap=0.5)
    alice = Client(server.base_url, options=options, open_transport=through(proxy))
    bob = Client(server.base_url, options=options)
    try:
        for client, name in ((alice, "alice"), (bob, "bob")):
            await client.create_account(name, "password-" + name)
            await client.login(name, "password-" + name, device="d1")
            await client.connect("tcp", timeout=10)

        assert proxy.blackhole_all() == 1
        started = time.monotonic()
        await bob.send(alice.user_id, "while you were away")
        message = await asyncio.wait_for(alice.next_message(), 20)
        took = time.monotonic() - started

        assert message.text == "while you were away"
        # Alice's SDK notices within a heartbeat interval plus its echo timeout.
        assert took < 2 + 2 + 3
        assert proxy.counts.connections == 2
    finally:
        await alice.close()
        await bob.close()
        await proxy.close()
        await asyncio.to_thread(server.terminate)
