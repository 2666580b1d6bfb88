"""Access rule for signed media URLs.

A user may sign URLs of a file when the user uploaded the same bytes, or
when a media message in the user's inbox (one-to-one or group) refers to
the file and was sent by a user who uploaded it. Sending a message that
names a file id therefore grants nothing unless the sender has the file, so
a media id learned elsewhere is not enough to download it.

Uploads are recorded as empty marker blobs beside the file, one per user
(``blob_key(id, ".u<user id in base 36>")``), so the record needs no
schema change and lives in the same store as the file.
"""

from __future__ import annotations

import json

from switchboard.blob.base import BlobStore, blob_key
from switchboard.blob.metadata import MediaMetadata
from switchboard.ids import UserId
from switchboard.logic.content import MEDIA
from switchboard.store.base import Store

__all__ = ["MAX_REFERENCES", "MediaAccess"]

MAX_REFERENCES = 100
"""Media messages naming a file that are checked per request, at most."""

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class MediaAccess:
    """Records uploaders and decides who may sign URLs of a file."""

    def __init__(self, blobs: BlobStore, store: Store) -> None:
        self._blobs = blobs
        self._store = store

    async def record_upload(self, media_id: str, user_id: int) -> None:
        """Record that ``user_id`` uploaded the bytes of ``media_id``."""
        key = _uploader_key(media_id, user_id)
        if not await self._blobs.exists(key):
            await self._blobs.put_bytes(key, b"")

    async def may_sign(self, user_id: UserId, metadata: MediaMetadata) -> bool:
        """Return whether ``user_id`` may get signed URLs of the file."""
        if await self._uploaded(metadata, user_id):
            return True
        references = await self._store.find_in_bodies(
            user_id, MEDIA, metadata.sha256.encode(), MAX_REFERENCES
        )
        senders = {
            sender
            for sender, body in references
            if _referenced_id(body) == metadata.sha256
        }
        for sender in senders:
            if await self._uploaded(metadata, sender):
                return True
        return False

    async def _uploaded(self, metadata: MediaMetadata, user_id: int) -> bool:
        # The first uploader is in the metadata; files stored before uploads
        # were recorded have only that.
        if metadata.uploader == user_id:
            return True
        return await self._blobs.exists(_uploader_key(metadata.sha256, user_id))


def _uploader_key(media_id: str, user_id: int) -> str:
    digits = ""
    number = user_id
    while True:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
        if number == 0:
            break
    return blob_key(media_id, ".u" + digits)


def _referenced_id(body: bytes) -> str | None:
    """Return the file id of a media message body, or None if it has none."""
    try:
        reference = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(reference, dict):
        return None
    media = reference.get("media")
    return media if isinstance(media, str) else None
