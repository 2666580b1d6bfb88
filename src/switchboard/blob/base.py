"""Blob store interface: immutable byte objects under server-generated keys.

A key is ``ab/cd/<sha256>`` with an optional suffix (``.json``, ``.thumb``),
where ``ab`` and ``cd`` are the first four hex digits of the SHA-256. Keys are
built by :func:`blob_key` from a digest the server computed itself, so nothing
a client sends ever becomes part of a file name or an object name.
Implementations reject any other key with ValueError.

The embedded implementation is :class:`switchboard.blob.local.LocalBlobStore`.
The interface uses only operations an object store such as S3 offers: whole
writes, ranged reads, size, delete and existence checks.
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from switchboard.errors import SwitchboardError

__all__ = [
    "CHUNK_SIZE",
    "BlobNotFound",
    "BlobStore",
    "blob_key",
    "check_key",
    "is_sha256",
]

CHUNK_SIZE = 64 * 1024
"""Bytes per chunk when blobs are streamed in or out."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})(\.[a-z][a-z0-9]{0,15})?")
_SUFFIX = re.compile(r"(\.[a-z][a-z0-9]{0,15})?")


class BlobNotFound(SwitchboardError):
    """No blob is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no blob under key {key!r}")
        self.key = key


def is_sha256(text: str) -> bool:
    """Return whether ``text`` is a SHA-256 digest in lowercase hex."""
    return _SHA256.fullmatch(text) is not None


def blob_key(sha256: str, suffix: str = "") -> str:
    """Return the key ``ab/cd/<sha256><suffix>`` of a digest.

    ``suffix`` is empty, or a dot, a letter a-z and up to 15 of a-z and 0-9.
    Raises ValueError for a digest that is not 64 lowercase hex digits or for
    another suffix.
    """
    if not is_sha256(sha256):
        raise ValueError(f"invalid SHA-256 {sha256[:80]!r}: expected 64 hex digits")
    if _SUFFIX.fullmatch(suffix) is None:
        raise ValueError(f"invalid key suffix {suffix[:40]!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"


def check_key(key: str) -> str:
    """Return ``key`` if :func:`blob_key` could have built it, else raise ValueError."""
    match = _KEY.fullmatch(key)
    if match is None or match[3][:4] != match[1] + match[2]:
        raise ValueError(f"invalid blob key {key[:100]!r}: expected ab/cd/<sha256>")
    return key


class BlobStore(abc.ABC):
    """Storage of immutable blobs. Every method raises ValueError for a key
    that :func:`check_key` rejects.

    Readers never see a partly written blob: a write becomes visible whole or
    not at all. Writing an existing key replaces the blob, which for
    content-addressed keys means storing the same bytes again.
    """

    @abc.abstractmethod
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenated ``chunks`` under ``key`` and return the size."""

    async def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` and delete ``path``.

        The default streams the file through :meth:`put`. An implementation
        on the same file system may move the file instead.
        """
        await self.put(key, _read_file(path))
        await asyncio.to_thread(path.unlink)

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``."""

        async def one_chunk() -> AsyncIterator[bytes]:
            yield data

        await self.put(key, one_chunk())

    @abc.abstractmethod
    def open(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the bytes from ``start`` up to but not including ``end``.

        ``end`` None means the end of the blob. Raises BlobNotFound on the
        first iteration when the key is missing.
        """

    async def read_bytes(self, key: str) -> bytes:
        """Return the whole blob, which should be small, such as metadata.

        Raises BlobNotFound when the key is missing.
        """
        return b"".join([chunk async for chunk in self.open(key)])

    @abc.abstractmethod
    async def size(self, key: str) -> int:
        """Return the blob's size in bytes, or raise BlobNotFound."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Return whether a blob is stored under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete the blob and return True, or return False when there was none."""


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
            yield chunk
    finally:
        file.close()
