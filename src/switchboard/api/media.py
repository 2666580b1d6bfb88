"""HTTP API for media: uploads, signed download URLs and downloads.

- ``POST /v1/media`` (bearer token) takes the raw file as the request body,
  with an optional ``X-File-Name`` header (UTF-8, percent-encoded), and
  returns 201 with the media id (the SHA-256 of the bytes) and signed URLs.
- ``GET /v1/media/{id}/url`` (bearer token) returns fresh signed URLs, to
  the file's uploaders and to users sent the file by an uploader.
- ``GET /v1/media/{id}?expires=...&sig=...`` and
  ``GET /v1/media/{id}/thumbnail?expires=...&sig=...`` download, with
  ``Range`` support. They need no token: the signature is the authorization.

Errors use the API's usual body ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from PIL import Image
from starlette.requests import ClientDisconnect

from switchboard.api.errors import error_responses
from switchboard.api.media_access import MediaAccess
from switchboard.api.ranges import ByteRange, RangeNotSatisfiable, parse_range
from switchboard.api.signing import UrlSigner, load_or_create_key
from switchboard.api.uploads import EmptyUpload, MediaLibrary, UploadTooLarge
from switchboard.blob.base import BlobStore, blob_key, is_sha256
from switchboard.blob.images import InvalidImage
from switchboard.blob.local import LocalBlobStore
from switchboard.blob.metadata import MediaMetadata, display_name
from switchboard.blob.sniff import INLINE_SAFE_TYPES
from switchboard.logs import RateLimitedLog
from switchboard.store.base import Session

if TYPE_CHECKING:
    from switchboard.api.app import Services

__all__ = ["MEDIA_KEY_FILE", "MediaError", "install_media"]

logger = logging.getLogger("switchboard.api")
rejections = RateLimitedLog(logger)

MEDIA_KEY_FILE = "media.key"
"""File in the data directory that contains the URL signing key."""

# Variants of a media file, each with its own URL and signature.
ORIGINAL = "original"
THUMBNAIL = "thumbnail"


class MediaError(Exception):
    """An error response of the media API."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    206: {"description": "The requested range of the file"},
    304: {"description": "The client's copy, named in If-None-Match, is current"},
    **error_responses(416),
}

_UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes. Send its name in X-File-Name"
        " (UTF-8, percent-encoded); the content type is sniffed from the bytes.",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@dataclass(frozen=True, slots=True)
class _Variant:
    key: str
    content_type: str
    size: int
    etag: str
    file_name: str


def install_media(
    app: FastAPI, services: Services, *, blobs: BlobStore | None = None
) -> None:
    """Add the media routes and their error handler to ``app``.

    ``blobs`` defaults to a :class:`LocalBlobStore` in ``data_dir/media``.
    Creates the signing key ``data_dir/media.key`` on first use. Raises
    ValueError when that file exists but does not contain a valid key.
    """
    # Imported here because app.py imports this module to call this function.
    from switchboard.api.app import current_session

    settings = services.settings
    spool_dir = settings.data_dir / "media" / "tmp"
    if blobs is None:
        local = LocalBlobStore(settings.data_dir / "media")
        local.remove_stale_temp_files()
        blobs, spool_dir = local, local.temp_dir
    # Pillow checks every image it opens against this global limit.
    Image.MAX_IMAGE_PIXELS = settings.media_max_image_pixels
    library = MediaLibrary(
        blobs, spool_dir, settings.media_max_size, settings.media_max_image_pixels
    )
    signer = UrlSigner(load_or_create_key(settings.data_dir / MEDIA_KEY_FILE))
    links = _Links(signer, settings.media_url_ttl)
    access = MediaAccess(blobs, services.store)
    app.include_router(_router(library, links, access, current_session))

    @app.exception_handler(MediaError)
    async def media_error(request: Request, exc: MediaError) -> JSONResponse:
        services.chat.stats.count_error(exc.code)
        body = {"error": {"code": exc.code, "message": exc.message}}
        return JSONResponse(body, exc.status, headers=exc.headers)


class _Links:
    """Signed URLs of media files."""

    def __init__(self, signer: UrlSigner, ttl: int) -> None:
        self.signer = signer
        self.ttl = ttl

    def describe(
        self, request: Request, metadata: MediaMetadata, name: str | None
    ) -> dict[str, Any]:
        """Return the JSON of a media file with URLs valid for ``ttl`` seconds."""
        expires = int(time.time()) + self.ttl
        thumbnail_url = None
        if metadata.thumbnail_key is not None:
            thumbnail_url = self.url(request, metadata.sha256, THUMBNAIL, expires)
        return {
            "id": metadata.sha256,
            "content_type": metadata.content_type,
            "size": metadata.size,
            "name": name,
            "width": metadata.width,
            "height": metadata.height,
            "url": self.url(request, metadata.sha256, ORIGINAL, expires),
            "thumbnail_url": thumbnail_url,
            "expires_at": expires * 1000,
        }

    def url(self, request: Request, media_id: str, variant: str, expires: int) -> str:
        route = "download_media" if variant == ORIGINAL else "download_thumbnail"
        signature = self.signer.sign(media_id, variant, expires)
        base = request.url_for(route, media_id=media_id)
        return str(base.include_query_params(expires=expires, sig=signature))

    def check(
        self, media_id: str, variant: str, expires: str | None, signature: str | None
    ) -> int:
        """Return the expiry of a valid, unexpired URL, or raise MediaError 403."""
        if expires is None or signature is None:
            raise MediaError(
                403,
                "missing_signature",
                "the URL has no 'expires' and 'sig' parameters; get a signed URL"
                f" with GET /v1/media/{media_id}/url",
            )
        valid_number = expires.isascii() and expires.isdigit() and len(expires) < 16
        expiry = int(expires) if valid_number else -1
        if expiry < 0 or not self.signer.verify(media_id, variant, expiry, signature):
            raise MediaError(
                403,
                "invalid_signature",
                "the URL's signature does not match; use the URL exactly as"
                f" returned by GET /v1/media/{media_id}/url",
            )
        now = int(time.time())
        if expiry < now:
            raise MediaError(
                403,
                "url_expired",
                f"the URL expired {now - expiry} s ago; get a new one with"
                f" GET /v1/media/{media_id}/url",
            )
        return expiry


def _router(
    library: MediaLibrary,
    links: _Links,
    access: MediaAccess,
    current_session: Callable[..., Awaitable[Session]],
) -> APIRouter:
    router = APIRouter()
    # A default value, not an Annotated alias: FastAPI resolves string
    # annotations in the module's globals, where current_session is not.
    authenticated = Depends(current_session)

    @router.post("/v1/media", status_code=201, openapi_extra=_UPLOAD_OPENAPI)
    async def upload(
        request: Request, session: Session = authenticated
    ) -> JSONResponse:
        """Store the request body as a file and return its id and signed URLs.

        The content type is sniffed from the bytes, and the request's
        ``Content-Type`` is ignored.
        """
        _check_declared_size(request, library)
        name = _file_name(request.headers.get("x-file-name"))
        try:
            metadata = await library.add(request.stream(), name, session.user_id)
        except UploadTooLarge as exc:
            rejections.warning("upload-size", "upload rejected: %s", exc)
            raise MediaError(413, "content_too_large", str(exc)) from exc
        except EmptyUpload as exc:
            raise MediaError(400, "empty_file", str(exc)) from exc
        except InvalidImage as exc:
            rejections.warning("upload-image", "upload rejected: %s", exc)
            raise MediaError(400, "invalid_image", str(exc)) from exc
        except ClientDisconnect as exc:
            logger.info("upload by user %d ended early", session.user_id)
            raise MediaError(
                400, "upload_incomplete", "the connection closed mid-upload"
            ) from exc
        await access.record_upload(metadata.sha256, session.user_id)
        body = links.describe(request, metadata, name or metadata.name)
        return JSONResponse(body, 201)

    @router.get("/v1/media/{media_id}/url")
    async def media_url(
        media_id: str, request: Request, session: Session = authenticated
    ) -> dict[str, Any]:
        """Return fresh signed URLs and the metadata of a media file.

        Only for its uploaders and the users that a message from an uploader
        sent it to (see :mod:`switchboard.api.media_access`). Others get the
        same 404 as for an unknown id, so they learn nothing of the file.
        """
        metadata = await _metadata(library, media_id)
        if not await access.may_sign(session.user_id, metadata):
            rejections.warning(
                "media-url",
                "signed URL rejected: user %d may not access media %s",
                session.user_id,
                media_id,
            )
            raise MediaError(
                404, "media_not_found", f"no media with id {media_id[:80]!r}"
            )
        return links.describe(request, metadata, metadata.name)

    @router.get("/v1/media/{media_id}", name="download_media", responses=_DOWNLOAD)
    async def download(
        media_id: str,
        request: Request,
        expires: str | None = None,
        sig: str | None = None,
    ) -> Response:
        """Download a media file with a signed URL, with ``Range`` support."""
        expiry = links.check(media_id, ORIGINAL, expires, sig)
        metadata = await _metadata(library, media_id)
        variant = _Variant(
            blob_key(media_id),
            metadata.content_type,
            metadata.size,
            f'"{media_id}"',
            metadata.name or media_id,
        )
        return await _serve(request, library.blobs, variant, expiry)

    @router.get(
        "/v1/media/{media_id}/thumbnail", name="download_thumbnail", responses=_DOWNLOAD
    )
    async def download_thumbnail(
        media_id: str,
        request: Request,
        expires: str | None = None,
        sig: str | None = None,
    ) -> Response:
        """Download an image's thumbnail with a signed URL."""
        expiry = links.check(media_id, THUMBNAIL, expires, sig)
        metadata = await _metadata(library, media_id)
        if metadata.thumbnail_key is None or metadata.thumbnail_type is None:
            raise MediaError(
                404, "thumbnail_not_found", f"media {media_id} has no thumbnail"
            )
        extension = "png" if metadata.thumbnail_type == "image/png" else "jpg"
        variant = _Variant(
            metadata.thumbnail_key,
            metadata.thumbnail_type,
            metadata.thumbnail_size or 0,
            f'"{media_id}-thumbnail"',
            f"thumbnail-{media_id[:16]}.{extension}",
        )
        return await _serve(request, library.blobs, variant, expiry)

    return router


def _check_declared_size(request: Request, library: MediaLibrary) -> None:
    # Reject at once when Content-Length announces too much. Chunked bodies
    # are checked while they stream in.
    declared = request.headers.get("content-length", "")
    limit = library.max_size
    if declared.isdigit() and int(declared) > limit:
        rejections.warning(
            "upload-size", "upload rejected: Content-Length %s", declared[:20]
        )
        raise MediaError(
            413,
            "content_too_large",
            f"the file of {int(declared)} bytes exceeds the limit of {limit} bytes",
        )


def _file_name(header: str | None) -> str | None:
    """Decode ``X-File-Name``: UTF-8, percent-encoded or raw, then cleaned."""
    if header is None:
        return None
    raw = header.encode("latin-1").decode("utf-8", errors="replace")
    return display_name(unquote(raw, errors="replace"))


async def _metadata(library: MediaLibrary, media_id: str) -> MediaMetadata:
    metadata = await library.get(media_id) if is_sha256(media_id) else None
    if metadata is None:
        raise MediaError(404, "media_not_found", f"no media with id {media_id[:80]!r}")
    return metadata


async def _serve(
    request: Request, blobs: BlobStore, variant: _Variant, expiry: int
) -> Response:
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": variant.etag,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": f"private, max-age={max(0, expiry - int(time.time()))}",
        "Content-Disposition": _content_disposition(variant),
    }
    if variant.content_type not in INLINE_SAFE_TYPES:
        # Stops script in a file a browser renders in spite of "attachment".
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if _etag_matches(request.headers.get("if-none-match"), variant.etag):
        return Response(status_code=304, headers=headers)

    await _check_stored(blobs, variant.key)
    byte_range = _requested_range(request, variant)
    status = 200
    start, end = 0, variant.size
    if byte_range is not None:
        status = 206
        start, end = byte_range.start, byte_range.end
        headers["Content-Range"] = byte_range.content_range(variant.size)
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(
        blobs.open(variant.key, start, end),
        status_code=status,
        headers=headers,
        media_type=variant.content_type,
    )


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Return whether an ``If-None-Match`` list names ``etag``. Weak tags
    (``W/"..."``) match too, because If-None-Match uses weak comparison."""
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _requested_range(request: Request, variant: _Variant) -> ByteRange | None:
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != variant.etag:
        return None  # the client's partial copy is of another version
    try:
        return parse_range(request.headers.get("range"), variant.size)
    except RangeNotSatisfiable:
        raise MediaError(
            416,
            "range_not_satisfiable",
            f"the requested range is outside the file of {variant.size} bytes",
            {"Content-Range": f"bytes */{variant.size}"},
        ) from None


async def _check_stored(blobs: BlobStore, key: str) -> None:
    # MediaLibrary writes the metadata after the file, so a missing file was
    # deleted or lost afterwards.
    if not await blobs.exists(key):
        logger.error("blob %s is missing although its metadata is stored", key)
        raise MediaError(404, "media_not_found", "the file is missing from the store")


def _content_disposition(variant: _Variant) -> str:
    """Return ``inline`` for types safe to render, else ``attachment``, with
    the file name in ASCII and, per RFC 6266, in UTF-8."""
    kind = "inline" if variant.content_type in INLINE_SAFE_TYPES else "attachment"
    name = variant.file_name
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
