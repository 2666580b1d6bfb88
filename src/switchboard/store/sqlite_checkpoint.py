"""WAL checkpoints for the SQLite store, on a thread of their own.

In WAL mode a commit appends pages to the ``-wal`` file, and a checkpoint
copies them back into the database file. By default SQLite runs that
checkpoint inside the commit that takes the WAL past 1,000 pages, so that
commit, and every write waiting behind it, also pays for copying the pages
and syncing the database file. This thread runs PASSIVE checkpoints on its
own connection instead, at most once per interval and only after new
commits. The writer keeps a higher automatic threshold as a backstop, so
the WAL stays bounded if this thread falls behind.
"""

from __future__ import annotations

import logging
import pathlib
import sqlite3
import threading
from typing import Final

__all__ = ["WRITER_AUTOCHECKPOINT_PAGES", "Checkpointer"]

logger = logging.getLogger("switchboard.store")

CHECKPOINT_INTERVAL_S: Final = 0.5
"""Minimum seconds between two background checkpoints."""

WRITER_AUTOCHECKPOINT_PAGES: Final = 10_000
"""WAL size in pages at which the writer's own commit checkpoints: the
backstop for a checkpoint thread that cannot keep up."""


class Checkpointer:
    """Thread that checkpoints a WAL-mode database after the writer commits.

    ``notify_commit`` is cheap and safe to call from any thread. Failures are
    logged and retried at the next commit, since the writer's automatic
    checkpoint still bounds the WAL.
    """

    def __init__(
        self,
        path: pathlib.Path,
        busy_timeout_s: float,
        interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._interval_s = interval_s
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="switchboard-store-checkpoint", daemon=True
        )
        self.checkpoints = 0
        """Number of checkpoints run; written by the checkpoint thread only."""

    def start(self) -> None:
        self._thread.start()

    def notify_commit(self) -> None:
        """Note that the WAL has new pages to checkpoint."""
        if not self._committed.is_set():
            self._committed.set()

    def stop(self) -> None:
        """Stop the thread and close its connection; return once it has ended."""
        self._stopping.set()
        self._committed.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_s, isolation_level=None
            )
        except sqlite3.Error as exc:
            logger.error(
                "WAL checkpoint thread for %s failed to connect: %s. Commits "
                "will checkpoint at %d pages",
                self._path,
                exc,
                WRITER_AUTOCHECKPOINT_PAGES,
            )
            return

        try:
            while True:
                self._committed.wait()
                if self._stopping.is_set():
                    return
                self._committed.clear()
                self._checkpoint(conn)
                if self._stopping.wait(self._interval_s):
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            logger.warning("WAL checkpoint of %s failed: %s", self._path, exc)
            return
        self.checkpoints += 1
