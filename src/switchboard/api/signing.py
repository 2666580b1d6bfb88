"""Signed, expiring download URLs for media.

A URL carries ``expires`` (seconds since the Unix epoch) and ``sig``, the
HMAC-SHA256 in hex of ``"<media id>\\n<variant>\\n<expires>"`` under a 32-byte
server key. Anyone holding the URL may download until it expires, so URLs
are handed only to logged-in users, and a leaked URL stops working after
``media_url_ttl`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

__all__ = ["KEY_SIZE", "UrlSigner", "load_or_create_key"]

logger = logging.getLogger("switchboard.api")

KEY_SIZE = 32
"""Bytes of the signing key. RFC 2104 advises at least the hash's output
length, which is 32 bytes for SHA-256."""


class UrlSigner:
    """Signs and checks (media id, variant, expiry) triples with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(
                f"invalid signing key of {len(key)} bytes: need {KEY_SIZE}"
            )
        self._key = key

    def sign(self, media_id: str, variant: str, expires: int) -> str:
        """Return the signature in hex of a URL valid until ``expires``."""
        message = f"{media_id}\n{variant}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, media_id: str, variant: str, expires: int, signature: str) -> bool:
        """Return whether ``signature`` is :meth:`sign`'s output, ignoring expiry.

        Compares in constant time, so response times reveal nothing about the
        correct signature.
        """
        if not signature.isascii():
            return False
        expected = self.sign(media_id, variant, expires)
        return hmac.compare_digest(expected, signature.lower())


def load_or_create_key(
    path: Path,
    name: str = "media signing key",
    replaced: str = "signed URLs issued before then stop working",
) -> bytes:
    """Return the key stored at ``path``, after creating a random one if none.

    A new key file has mode 0600. Creation is atomic (written elsewhere, then
    hard-linked into place), so two processes starting at once read the same
    key. Raises ValueError when the file does not hold exactly
    :data:`KEY_SIZE` bytes. ``name`` names the key in messages, and
    ``replaced`` says what replacing the key breaks.
    """
    if not path.exists():
        _create_key(path, name)
    data = path.read_bytes()
    if len(data) != KEY_SIZE:
        raise ValueError(
            f"invalid {name} {path}: {len(data)} bytes instead of"
            f" {KEY_SIZE}; delete the file to make a new key ({replaced})"
        )
    if path.stat().st_mode & 0o077:
        logger.warning(
            "the %s %s is readable by other users; run chmod 600 %s",
            name,
            path,
            path,
        )
    return data


def _create_key(path: Path, name: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(KEY_SIZE))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
            logger.info("created the %s %s", name, path)
    finally:
        temp.unlink()
