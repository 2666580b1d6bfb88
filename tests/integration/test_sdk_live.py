"""Typing and presence through the SDK against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.client import (
    Client,
    ClientOptions,
    ClientState,
    MemoryStateStore,
    PresenceChanged,
    Signal,
    TypingChanged,
)
from tests.integration.conftest import ClientFactory, password_of
from tests.support.server import ServerProcess

__all__ = ["fast_server"]


@pytest.fixture
def fast_server(tmp_path: Path) -> ServerProcess:
    """A server that sends presence changes every 0.5 s at most."""
    env = {"SWITCHBOARD_PRESENCE_INTERVAL": "0.5"}
    return ServerProcess(tmp_path / "data", tmp_path / "server.log", env)


@pytest.fixture
def server(fast_server: ServerProcess) -> Iterator[ServerProcess]:
    fast_server.start()
    yield fast_server
    fast_server.terminate()


async def next_signal(client: Client, within: float = 5.0) -> Signal:
    async with asyncio.timeout(within):
        return await client.next_signal()


async def no_event(client: Client, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            event = await client.next_signal()
            pytest.fail(f"unexpected event {event}")


async def befriend(first: Client, second: Client) -> None:
    """Make two users peers: each writes to the other."""
    await first.send(second.user_id, "hi")
    await second.send(first.user_id, "hello")


async def test_typing_between_peers(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    await befriend(alice, bob)

    for _ in range(5):
        await alice.set_typing("bob")
    typing = await next_signal(bob)
    assert typing == TypingChanged(alice.user_id, "alice", 0, True, 6)
    # The SDK refreshes at most every 3 seconds, so the repeats sent nothing.
    await no_event(bob)
    await alice.set_typing("bob", active=False)
    stopped = await next_signal(bob)
    assert isinstance(stopped, TypingChanged)
    assert (stopped.active, stopped.ttl) == (False, 0)
    # A message resets the refresh: typing again is sent at once.
    await alice.set_typing("bob")
    await next_signal(bob)
    await alice.send("bob", "done")
    await alice.set_typing("bob")
    assert isinstance(await next_signal(bob), TypingChanged)
    await no_event(alice)


async def test_typing_in_group(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    carol = await clients("carol")
    group = await alice.create_group("team", ["bob", "carol"])

    await carol.set_typing(group=group.id)
    for member in (alice, bob):
        event = await next_signal(member)
        assert isinstance(event, TypingChanged)
        assert (event.user_name, event.group_id, event.active) == (
            "carol",
            group.id,
            True,
        )
    await no_event(carol)


async def test_presence_watch_and_changes(
    server: ServerProcess, clients: ClientFactory
) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    await befriend(alice, bob)
    await bob.watch_presence(["alice", "bob"])
    snapshot = {
        (e.user_name, e.online)
        for e in [await next_signal(bob), await next_signal(bob)]
    }
    assert snapshot == {("alice", True), ("bob", True)}
    assert bob.presence(alice.user_id) == PresenceChanged(alice.user_id, None, True, 0)

    await alice.close()
    offline = await next_signal(bob)
    assert isinstance(offline, PresenceChanged)
    assert (offline.user_id, offline.online) == (alice.user_id, False)
    assert offline.last_seen > 0

    # The watch list survives a reconnect: it is sent again on the new
    # connection, which gets a fresh answer.
    server.restart()
    again = {
        (e.user_name, e.online)
        for e in [await next_signal(bob, 20), await next_signal(bob)]
    }
    assert again == {("alice", False), ("bob", True)}
    returning = Client(
        server.base_url,
        state=MemoryStateStore(ClientState()),
        options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
    )
    try:
        await returning.login("alice", password_of("alice"), device="d2")
        await returning.connect(timeout=10)
        back = await next_signal(bob)
        assert (back.user_id, back.online) == (alice.user_id, True)  # type: ignore[union-attr]
    finally:
        await returning.close()


async def test_strangers_see_no_presence(clients: ClientFactory) -> None:
    alice = await clients("alice", connect=False)
    mallory = await clients("mallory")
    await mallory.send("alice", "are you online?")
    await mallory.watch_presence(["alice"])
    await no_event(mallory, 1.0)
    await alice.connect(timeout=10)
    await no_event(mallory, 1.5)
    assert mallory.presence(alice.user_id) is None
