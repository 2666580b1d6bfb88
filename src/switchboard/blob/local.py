"""Blob store on the local file system, for the embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import IO

from switchboard.blob.base import CHUNK_SIZE, BlobNotFound, BlobStore, check_key

__all__ = ["LocalBlobStore"]

logger = logging.getLogger("switchboard.blob")


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``: key ``ab/cd/<sha256>`` is the file
    ``root/ab/cd/<sha256>``.

    A write goes to a temporary file in ``root/tmp``, is flushed to disk with
    fsync and then renamed into place with ``os.replace``, so a reader or a
    crash never leaves a partly written blob under its key.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = root / "tmp"
        """Directory of files being written. It is on the same file system as
        the blobs, so a finished file can be renamed into place."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def remove_stale_temp_files(self, max_age: float = 3600.0) -> int:
        """Delete files older than ``max_age`` seconds from :attr:`temp_dir`
        and return their number. Such files are left by interrupted writes."""
        removed = 0
        cutoff = time.time() - max_age
        for path in self.temp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        if removed:
            logger.info(
                "removed %d stale temporary files in %s", removed, self.temp_dir
            )
        return removed

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self._path(key)
        temp = await asyncio.to_thread(self._create_temp)
        size = 0
        try:
            with temp:
                async for chunk in chunks:
                    await asyncio.to_thread(temp.write, chunk)
                    size += len(chunk)
                await asyncio.to_thread(_sync, temp)
            await asyncio.to_thread(self._move_into_place, Path(temp.name), final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name)
            raise
        return size

    async def put_file(self, key: str, path: Path) -> None:
        final = self._path(key)
        same_device = await asyncio.to_thread(_same_device, path, self.root)
        if not same_device:
            await super().put_file(key, path)
            return
        await asyncio.to_thread(_sync_path, path)
        await asyncio.to_thread(self._move_into_place, path, final)

    async def open(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            await asyncio.to_thread(file.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                wanted = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(file.read, wanted)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            file.close()

    async def size(self, key: str) -> int:
        path = self._path(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return stat.st_size

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _create_temp(self) -> IO[bytes]:
        return tempfile.NamedTemporaryFile(
            dir=self.temp_dir, prefix="put-", delete=False
        )

    def _move_into_place(self, source: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, final)
        _sync_directory(final.parent)


def _same_device(path: Path, root: Path) -> bool:
    return path.stat().st_dev == root.stat().st_dev


def _sync(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _sync_path(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def _sync_directory(path: Path) -> None:
    # The directory's fsync makes the rename survive a power loss. Opening a
    # directory this way works on POSIX systems only.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
