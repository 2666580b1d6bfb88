"""Metadata of an uploaded file, kept as a JSON object beside the blob.

For a file with SHA-256 ``h`` the store contains three objects: the file under
``blob_key(h)``, its metadata under ``blob_key(h, ".json")`` and, for images,
a thumbnail under ``blob_key(h, ".thumb")``. The metadata is written last,
so a file whose metadata exists is complete.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from switchboard.blob.base import BlobNotFound, BlobStore, blob_key

__all__ = [
    "MAX_NAME_LENGTH",
    "MediaMetadata",
    "display_name",
    "load_metadata",
    "metadata_key",
    "save_metadata",
    "thumbnail_key",
]

MAX_NAME_LENGTH = 255
"""Characters kept of a file name. Longer names are cut, keeping the extension."""

_MAX_EXTENSION_LENGTH = 16
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
"""Unicode categories removed from names: controls (NUL included), format
characters such as bidirectional overrides, and unassigned code points."""


def metadata_key(sha256: str) -> str:
    return blob_key(sha256, ".json")


def thumbnail_key(sha256: str) -> str:
    return blob_key(sha256, ".thumb")


@dataclass(frozen=True, slots=True)
class MediaMetadata:
    """Record of one uploaded file, as the server stored it."""

    sha256: str
    """SHA-256 of the content in lowercase hex, which is also the media id."""
    content_type: str
    """Content type sniffed from the bytes, never taken from the client."""
    size: int
    """Bytes."""
    name: str | None
    """File name given by the first uploader, cleaned by :func:`display_name`
    and meant for display only."""
    width: int | None
    """Pixels, as displayed with EXIF rotation applied. None for non-images."""
    height: int | None
    thumbnail_key: str | None
    thumbnail_type: str | None
    thumbnail_size: int | None
    uploader: int
    """User id of the first uploader."""
    created_at: int
    """Milliseconds since the Unix epoch."""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes) -> MediaMetadata:
        """Parse :meth:`to_json` output, or raise ValueError if it does not fit."""
        try:
            fields: dict[str, Any] = json.loads(data)
            return cls(**fields)
        except (TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"invalid media metadata: {exc}") from exc


async def load_metadata(store: BlobStore, sha256: str) -> MediaMetadata | None:
    """Return the metadata of the file ``sha256``, or None if none is stored."""
    try:
        data = await store.read_bytes(metadata_key(sha256))
    except BlobNotFound:
        return None
    return MediaMetadata.from_json(data)


async def save_metadata(store: BlobStore, metadata: MediaMetadata) -> None:
    await store.put_bytes(metadata_key(metadata.sha256), metadata.to_json())


def display_name(raw: str) -> str | None:
    """Clean a client's file name for display, or return None if nothing is left.

    Keeps the last path component (after ``/`` or ``\\``), removes control
    and format characters, and cuts the name to :data:`MAX_NAME_LENGTH`
    characters. The result is never used as a path: blob keys come from the
    content's SHA-256.
    """
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        char for char in base if unicodedata.category(char) not in _DROPPED_CATEGORIES
    ).strip()
    if name in ("", ".", ".."):
        return None
    if len(name) <= MAX_NAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if stem and dot and len(extension) <= _MAX_EXTENSION_LENGTH:
        keep = MAX_NAME_LENGTH - len(extension) - 1
        return f"{name[:keep]}.{extension}"
    return name[:MAX_NAME_LENGTH]
