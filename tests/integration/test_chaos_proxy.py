"""SDK clients chat with a real server through the chaos proxy."""

from __future__ import annotations

import asyncio

from switchboard.chaos import ChaosProxy, FaultSettings
from switchboard.client import Gateway, Transport, TransportFactory
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
