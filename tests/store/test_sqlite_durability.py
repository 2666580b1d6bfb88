"""Messages acknowledged by SqliteStore survive SIGKILL of the writing process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import sys

import pytest

from switchboard.ids import ClientMessageId, DeviceId, Seq
from switchboard.store.base import InboxEntry, User
from switchboard.store.sqlite import SqliteStore
from tests.support.server import ServerProcess

CHILD_SCRIPT = pathlib.Path(__file__).with_name("append_until_killed.py")
MIN_ACKS = 300
LINE_TIMEOUT_S = 30.0


async def run_child_until_acks(
    path: pathlib.Path, synchronous: str
) -> list[tuple[int, int, int]]:
    """Run the child until it printed MIN_ACKS acks, SIGKILL it, return all acks.

    Each ack is (client id, message id, recipient seq).
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD_SCRIPT),
        str(path),
        "--synchronous",
        synchronous,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    output = b""
    try:
        for _ in range(MIN_ACKS):
            line = await asyncio.wait_for(child.stdout.readline(), LINE_TIMEOUT_S)
            if not line:
                break  # the child exited
            output += line
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        rest, errors = await child.communicate()

    # Lines printed between the last read and the kill are acks too. A line
    # cut short by the kill is not.
    output += rest
    lines = output.split(b"\n")[:-1]
    assert len(lines) >= MIN_ACKS, f"child exited early:\n{errors.decode()}"
    assert child.returncode == -signal.SIGKILL, errors.decode()

    acks = []
    for line in lines:
        client_id, message_id, seq = line.split()
        acks.append((int(client_id), int(message_id), int(seq)))
    return acks


async def read_whole_inbox(store: SqliteStore, user: User) -> list[InboxEntry]:
    entries: list[InboxEntry] = []
    after_seq = Seq(0)
    while True:
        page = await store.read_inbox(user.id, after_seq, 500)
        entries.extend(page.entries)
        if not page.has_more:
            return entries
        after_seq = page.entries[-1].seq


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_acked_messages_survive_sigkill(
    tmp_path: pathlib.Path, synchronous: str
) -> None:
    path = tmp_path / "switchboard.db"
    acks = await run_child_until_acks(path, synchronous)

    store = SqliteStore(path, synchronous=synchronous)
    await store.open()
    try:
        alice = await store.get_user_by_name("alice")
        bob = await store.get_user_by_name("bob")
        assert alice is not None
        assert bob is not None
        bob_inbox = await read_whole_inbox(store, bob)
        alice_inbox = await read_whole_inbox(store, alice)

        # The inboxes are intact: gapless, without repeats, the same messages.
        seqs = [entry.seq for entry in bob_inbox]
        assert seqs == list(range(1, len(bob_inbox) + 1))
        assert await store.head_seq(bob.id) == len(bob_inbox)
        # Alice's inbox holds the same messages, which she sent, so none of
        # them is unread for her.
        assert [(e.seq, e.message) for e in alice_inbox] == [
            (e.seq, e.message) for e in bob_inbox
        ]
        assert {e.unread for e in alice_inbox} == {0}
        assert [e.unread for e in bob_inbox] == seqs
        message_ids = [entry.message.id for entry in bob_inbox]
        assert len(set(message_ids)) == len(message_ids)

        # Every acked message is stored once, at the sequence in its ack.
        by_seq = {entry.seq: entry.message for entry in bob_inbox}
        for client_id, message_id, seq in acks:
            message = by_seq.get(Seq(seq))
            assert message is not None, f"acked client id {client_id} lost"
            assert message.id == message_id
            assert message.body == f"message {client_id}".encode()
            assert message_ids.count(message.id) == 1

        # Resending an acked message finds the stored copy.
        for client_id, message_id, seq in acks[:: len(acks) // 20]:
            repeat = await store.append_message(
                alice.id,
                DeviceId("phone"),
                ClientMessageId(client_id),
                bob.id,
                1,
                b"resent",
                0,
            )
            assert repeat.duplicate is True
            assert repeat.message.id == message_id
            assert repeat.recipient_seq == seq
    finally:
        await store.close()


@pytest.mark.parametrize(("synchronous", "pragma"), [("normal", 1), ("full", 2)])
async def test_synchronous_reaches_connection(
    tmp_path: pathlib.Path, synchronous: str, pragma: int
) -> None:
    store = SqliteStore(tmp_path / "switchboard.db", synchronous=synchronous)
    await store.open()
    try:
        assert await store.synchronous_pragma() == pragma
    finally:
        await store.close()


def test_server_applies_synchronous_setting(tmp_path: pathlib.Path) -> None:
    server = ServerProcess(
        tmp_path / "data", tmp_path / "server.log", {"SWITCHBOARD_SYNCHRONOUS": "full"}
    )
    server.start()
    try:
        assert "synchronous=full (PRAGMA synchronous=2)" in server.log()
    finally:
        server.terminate()
