"""Many SDK clients chat while the server is SIGKILLed and restarted.

Every acknowledged message must end up in its recipient's inbox exactly
once, in the order its sender's SDK submitted it, and no client may hand out
a message twice. The default size is the CI run; set SWITCHBOARD_SOAK_CLIENTS
and SWITCHBOARD_SOAK_MESSAGES for a longer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.client.client import Client
from switchboard.client.models import Message, Sent
from switchboard.ids import Seq, UserId
from switchboard.store.sqlite import SqliteStore
from tests.support.server import ServerProcess

CLIENTS = int(os.environ.get("SWITCHBOARD_SOAK_CLIENTS", "50"))
MESSAGES = int(os.environ.get("SWITCHBOARD_SOAK_MESSAGES", "20000"))
KILLS = 2
WINDOW = 16
"""Sends each client keeps in flight."""
PEER_OFFSETS = (1, 7, 13)
"""Client i talks to clients i+1, i+7 and i+13 (modulo the count)."""
DEADLINE = 120.0
"""Seconds the whole exchange may take before the test fails."""


@dataclass
class Peer:
    client: Client
    user_id: int = 0
    acked: list[Sent] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)


async def start_peer(base_url: str, index: int) -> Peer:
    client = Client(base_url)
    name, password = f"user{index}", f"password-{index}"
    await client.create_account(name, password)
    await client.login(name, password, device="soak", platform="cli")
    await client.connect("tcp", timeout=30)
    return Peer(client, client.user_id)


async def send_all(peer: Peer, recipients: list[int], count: int) -> None:
    window = asyncio.Semaphore(WINDOW)

    async def send_one(index: int) -> None:
        async with window:
            to = recipients[index % len(recipients)]
            sent = await peer.client.send(to, f"{peer.user_id}:{to}:{index}")
            peer.acked.append(sent)

    async with asyncio.TaskGroup() as group:
        for index in range(count):
            await window.acquire()
            window.release()
            group.create_task(send_one(index))


async def receive_until(
    peer: Peer, expected: asyncio.Event, wanted: dict[int, int]
) -> None:
    """Collect messages until ``wanted[user_id]`` incoming ones have arrived."""
    incoming = 0
    while True:
        if incoming >= wanted.get(peer.user_id, -1) and expected.is_set():
            return
        try:
            async with asyncio.timeout(0.5):
                message = await peer.client.next_message()
        except TimeoutError:
            continue
        peer.received.append(message)
        if not message.outgoing:
            incoming += 1


async def kill_twice(server: ServerProcess, peers: list[Peer]) -> None:
    """SIGKILL and restart the server when a third and two thirds are acked."""
    for kill in range(1, KILLS + 1):
        target = MESSAGES * kill // (KILLS + 1)
        # Polling is simpler than an event fed by every sending task.
        while sum(len(p.acked) for p in peers) < target:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)


async def run_exchange(server: ServerProcess) -> list[Peer]:
    peers = [await start_peer(server.base_url, i) for i in range(CLIENTS)]
    per_client = MESSAGES // CLIENTS
    all_acked = asyncio.Event()
    wanted: dict[int, int] = {}
    async with asyncio.timeout(DEADLINE):
        receivers = [
            asyncio.create_task(receive_until(p, all_acked, wanted)) for p in peers
        ]
        killer = asyncio.create_task(kill_twice(server, peers))
        await asyncio.gather(
            *(
                send_all(
                    p,
                    [peers[(i + k) % CLIENTS].user_id for k in PEER_OFFSETS],
                    per_client,
                )
                for i, p in enumerate(peers)
            )
        )
        await killer
        for peer in peers:
            for sent in peer.acked:
                wanted[sent.recipient_id] = wanted.get(sent.recipient_id, 0) + 1
        all_acked.set()
        await asyncio.gather(*receivers)
    for peer in peers:
        await peer.client.close()
    return peers


async def stored_inboxes(data_dir: Path, user_ids: list[int]) -> dict[int, list[int]]:
    """Read every user's whole inbox from the store: message ids by seq."""
    store = SqliteStore(data_dir / "switchboard.db")
    await store.open()
    inboxes: dict[int, list[int]] = {}
    try:
        for user_id in user_ids:
            ids: list[int] = []
            after = 0
            while True:
                page = await store.read_inbox(UserId(user_id), Seq(after), 1000)
                ids += [entry.message.id for entry in page.entries]
                assert [e.seq for e in page.entries] == list(
                    range(after + 1, after + 1 + len(page.entries))
                ), "inbox sequence has a gap"
                if not page.has_more:
                    break
                after = page.entries[-1].seq
            inboxes[user_id] = ids
    finally:
        await store.close()
    return inboxes


def test_acked_messages_survive_two_server_kills(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        peers = asyncio.run(run_exchange(server))
    finally:
        with contextlib.suppress(Exception):
            server.terminate()
    assert server.log().count("opened SQLite store") == KILLS + 1

    acked = [sent for peer in peers for sent in peer.acked]
    assert len(acked) == MESSAGES // CLIENTS * CLIENTS
    sender_of = {sent.id: peer.user_id for peer in peers for sent in peer.acked}
    client_id_of = {sent.id: sent.client_id for peer in peers for sent in peer.acked}
    assert len(sender_of) == len(acked), "two sends acknowledged with one id"

    # Each client handed out each message once; incoming ones in send order.
    for peer in peers:
        ids = [m.id for m in peer.received]
        assert len(ids) == len(set(ids)), f"user {peer.user_id} got a duplicate"
        by_sender: dict[int, list[int]] = defaultdict(list)
        for message in peer.received:
            if not message.outgoing:
                by_sender[message.sender_id].append(client_id_of[message.id])
        for sender, client_ids in by_sender.items():
            assert client_ids == sorted(client_ids), f"{sender} -> {peer.user_id}"
        expected = {
            s.id for p in peers for s in p.acked if s.recipient_id == peer.user_id
        }
        assert {m.id for m in peer.received if not m.outgoing} == expected

    # The store contains each acked message once in the recipient's and the
    # sender's inbox.
    inboxes = asyncio.run(stored_inboxes(server.data_dir, [p.user_id for p in peers]))
    for peer in peers:
        counts: dict[int, int] = defaultdict(int)
        for message_id in inboxes[peer.user_id]:
            counts[message_id] += 1
        for sent in peer.acked:
            assert counts[sent.id] == 1, f"sender copy of {sent.id}"
        for other in peers:
            for sent in other.acked:
                if sent.recipient_id == peer.user_id:
                    assert counts[sent.id] == 1, f"recipient copy of {sent.id}"
