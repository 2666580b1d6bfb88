"""WAL checkpoints on their own thread, and the page size of new files."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

from switchboard.ids import ClientMessageId, DeviceId
from switchboard.store.sqlite import SqliteStore

CHECKPOINT_POLLS = 100
"""Checks 50 ms apart for the database file to grow: 5 s in all."""


def page_size(path: pathlib.Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


async def test_commits_reach_database_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    await store.open()
    try:
        ann = await store.create_user("ann", "hash", 0)
        bob = await store.create_user("bob", "hash", 0)
        await asyncio.sleep(1.0)
        size_before = path.stat().st_size

        for client_id in range(1, 201):
            await store.append_message(
                ann.id,
                DeviceId("phone"),
                ClientMessageId(client_id),
                bob.id,
                1,
                b"x" * 200,
                0,
            )

        # Commits append to the -wal file only. The writer's own checkpoint
        # waits for 10,000 WAL pages, far more than these writes fill, so the
        # database file grows only if the checkpoint thread copies them.
        for _ in range(CHECKPOINT_POLLS):
            if path.stat().st_size > size_before:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size_before
    finally:
        await store.close()


async def test_new_file_gets_small_pages(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "chat.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()

    assert page_size(path) == 2048


async def test_existing_file_keeps_page_size(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "chat.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE placeholder (id INTEGER)")
    conn.close()

    store = SqliteStore(path)
    await store.open()
    await store.close()

    assert page_size(path) == 4096
