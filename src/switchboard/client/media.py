"""HTTP calls for media: upload a file, get signed URLs, download.

Uploads and downloads stream through the file system in chunks, so a file is
never held in memory whole. A download is written to a temporary file beside
the destination, checked against its SHA-256 (the media id) and then renamed
into place, so an interrupted or corrupted download leaves no partial file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from switchboard.client.errors import ApiError, NotLoggedIn, ServerUnreachable
from switchboard.client.http import _error_from_response
from switchboard.client.models import Media
from switchboard.errors import SwitchboardError

__all__ = ["DownloadCorrupted", "MediaApi"]

logger = logging.getLogger("switchboard.client")

CHUNK_SIZE = 64 * 1024


class DownloadCorrupted(SwitchboardError):
    """A downloaded file's SHA-256 differs from its media id."""


class MediaApi:
    """Calls the media endpoints of the HTTP API at ``base_url``.

    ``token`` returns the current bearer token, or None when logged out.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: Callable[[], str | None],
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, verify=verify
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def upload(self, path: Path) -> Media:
        """Upload the file at ``path`` and return the server's description.

        Sends the file name in ``X-File-Name`` and a ``Content-Type`` guessed
        from it, which the server ignores in favour of the bytes.
        """
        size = (await asyncio.to_thread(path.stat)).st_size
        content_type, _ = mimetypes.guess_type(path.name)
        headers = {
            **self._auth(),
            "Content-Length": str(size),
            "Content-Type": content_type or "application/octet-stream",
            "X-File-Name": quote(path.name, safe=""),
        }
        response = await self._send(
            "POST", "/v1/media", headers=headers, content=_read_chunks(path)
        )
        return _media(response.json())

    async def fresh_urls(self, media_id: str) -> Media:
        """Return the description of a file, with URLs valid from now on."""
        response = await self._send(
            "GET", f"/v1/media/{quote(media_id, safe='')}/url", headers=self._auth()
        )
        return _media(response.json())

    async def download(self, media: Media, dest: Path) -> None:
        """Download ``media`` by its signed URL to ``dest``, replacing it.

        Raises DownloadCorrupted when the bytes do not hash to ``media.id``.
        """
        if media.url is None:
            raise ValueError(f"media {media.id} has no URL: call fresh_urls() first")
        temp = await asyncio.to_thread(_create_temp, dest)
        try:
            with temp:
                digest = await self._fetch(media.url, temp)
            if digest != media.id:
                raise DownloadCorrupted(
                    f"the download of media {media.id} has SHA-256 {digest};"
                    " download it again"
                )
            await asyncio.to_thread(os.replace, temp.name, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp.name)
            raise

    async def _fetch(self, url: str, output: IO[bytes]) -> str:
        # No token: the signed URL is the authorization, and it may point to
        # another host.
        digest = hashlib.sha256()
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error_from_response(response)
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    digest.update(chunk)
                    await asyncio.to_thread(output.write, chunk)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"downloading from {self.base_url} failed: {exc or type(exc).__name__}"
            ) from exc
        return digest.hexdigest()

    def _auth(self) -> dict[str, str]:
        token = self._token()
        if not token:
            raise NotLoggedIn("not logged in: log in to get a token first")
        return {"Authorization": f"Bearer {token}"}

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        content: AsyncIterator[bytes] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, path, headers=headers, content=content
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.base_url}:"
                f" {exc or type(exc).__name__}"
            ) from exc
        logger.debug("%s %s -> %d", method, path, response.status_code)
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_SIZE):
            yield chunk
    finally:
        file.close()


def _create_temp(dest: Path) -> IO[bytes]:
    return tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )


def _media(item: Any) -> Media:
    media = Media.from_json(item) if isinstance(item, dict) else None
    if media is None:
        raise ApiError(200, "invalid_response", f"unexpected media response {item!r}")
    return media
