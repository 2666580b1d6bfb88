"""Receiving uploaded files: spool to disk while hashing, sniff, deduplicate.

The HTTP layer (:mod:`switchboard.api.media`) hands the request body to
:meth:`MediaLibrary.add` as a stream of chunks. The body is never held in
memory whole: it goes to a temporary file while its SHA-256 is computed and
its size checked against the limit. The digest then names the blob, so a
second upload of the same bytes stores nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from switchboard.blob.base import BlobStore, blob_key
from switchboard.blob.images import inspect_image
from switchboard.blob.metadata import (
    MediaMetadata,
    load_metadata,
    save_metadata,
    thumbnail_key,
)
from switchboard.blob.sniff import IMAGE_TYPES, SNIFF_SIZE, sniff_content_type
from switchboard.errors import SwitchboardError

__all__ = ["EmptyUpload", "MediaLibrary", "UploadTooLarge"]

logger = logging.getLogger("switchboard.api")

WRITE_BATCH = 1024 * 1024
"""Bytes collected from the request before one write to the spool file."""

IMAGE_WORKERS = 2
"""Images decoded at once. Decoding one takes up to about 4 bytes per pixel, an
estimate of 360 MB at the default media_max_image_pixels."""


class UploadTooLarge(SwitchboardError):
    """The upload exceeds the size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file exceeds the limit of {limit} bytes")
        self.limit = limit


class EmptyUpload(SwitchboardError):
    """The upload has no bytes."""


@dataclass(frozen=True, slots=True)
class _Spooled:
    path: Path
    sha256: str
    size: int
    head: bytes
    """The first :data:`SNIFF_SIZE` bytes, for sniffing the content type."""


class MediaLibrary:
    """Adds uploaded files to a blob store and reads their metadata back.

    ``spool_dir`` contains files while they are received. Put it on the
    blob store's file system (:attr:`LocalBlobStore.temp_dir`), so that a
    finished upload is renamed into place instead of copied.
    """

    def __init__(
        self, blobs: BlobStore, spool_dir: Path, max_size: int, max_image_pixels: int
    ) -> None:
        self.blobs = blobs
        self._spool_dir = spool_dir
        self.max_size = max_size
        self._max_image_pixels = max_image_pixels
        self._image_workers = asyncio.Semaphore(IMAGE_WORKERS)
        spool_dir.mkdir(parents=True, exist_ok=True)

    async def add(
        self, chunks: AsyncIterable[bytes], name: str | None, uploader: int
    ) -> MediaMetadata:
        """Store the file made of ``chunks`` and return its metadata.

        When the same bytes were stored before, returns the metadata recorded
        then (with the first uploader's name) and stores nothing. Raises
        UploadTooLarge as soon as the size limit is exceeded, EmptyUpload for
        no bytes, and InvalidImage for a file that starts like an image but
        does not decode.
        """
        spooled = await self._spool(chunks)
        try:
            existing = await load_metadata(self.blobs, spooled.sha256)
            if existing is not None:
                logger.debug("media %s is stored already", spooled.sha256)
                return existing
            return await self._store(spooled, name, uploader)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(spooled.path.unlink)

    async def get(self, media_id: str) -> MediaMetadata | None:
        """Return the metadata of a stored file, or None."""
        return await load_metadata(self.blobs, media_id)

    async def _spool(self, chunks: AsyncIterable[bytes]) -> _Spooled:
        fd, name = await asyncio.to_thread(
            tempfile.mkstemp, dir=self._spool_dir, prefix="upload-"
        )
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        head = bytearray()
        batch = bytearray()
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_size:
                        raise UploadTooLarge(self.max_size)
                    digest.update(chunk)
                    if len(head) < SNIFF_SIZE:
                        head += chunk[: SNIFF_SIZE - len(head)]
                    batch += chunk
                    if len(batch) >= WRITE_BATCH:
                        await asyncio.to_thread(file.write, bytes(batch))
                        batch.clear()
                await asyncio.to_thread(file.write, bytes(batch))
            if size == 0:
                raise EmptyUpload("the request body is empty: send the file's bytes")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        return _Spooled(path, digest.hexdigest(), size, bytes(head))

    async def _store(
        self, spooled: _Spooled, name: str | None, uploader: int
    ) -> MediaMetadata:
        content_type = sniff_content_type(spooled.head)
        width = height = thumbnail_size = None
        thumb_key = thumb_type = None
        if content_type in IMAGE_TYPES:
            async with self._image_workers:
                image = await asyncio.to_thread(
                    inspect_image, spooled.path, self._max_image_pixels
                )
            width, height = image.width, image.height
            thumb_key = thumbnail_key(spooled.sha256)
            thumb_type = image.thumbnail_type
            thumbnail_size = len(image.thumbnail)
            await self.blobs.put_bytes(thumb_key, image.thumbnail)

        # The file, then its metadata: metadata present means complete.
        await self.blobs.put_file(blob_key(spooled.sha256), spooled.path)
        metadata = MediaMetadata(
            sha256=spooled.sha256,
            content_type=content_type,
            size=spooled.size,
            name=name,
            width=width,
            height=height,
            thumbnail_key=thumb_key,
            thumbnail_type=thumb_type,
            thumbnail_size=thumbnail_size,
            uploader=uploader,
            created_at=int(time.time() * 1000),
        )
        await save_metadata(self.blobs, metadata)
        logger.info(
            "stored media %s type=%s size=%d user=%d",
            spooled.sha256,
            content_type,
            spooled.size,
            uploader,
        )
        return metadata
