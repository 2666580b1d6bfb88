"""Media HTTP API against a real server: uploads, signed URLs and downloads."""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from PIL import Image

from switchboard.api.signing import UrlSigner
from tests.support.rawclient import create_user
from tests.support.server import ServerProcess

MAX_SIZE = 200_000
URL_TTL = 600
KEY_PATTERN = re.compile(
    r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}(\.json|\.thumb|\.u[0-9a-z]{1,13})?"
)


@dataclass
class MediaServer:
    process: ServerProcess
    root: Path
    """The test's temporary directory, which contains the data directory."""
    token: str
    user_id: int

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def media_dir(self) -> Path:
        return self.process.data_dir / "media"


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    root = tmp_path_factory.mktemp("media")
    env = {
        "SWITCHBOARD_MEDIA_MAX_SIZE": str(MAX_SIZE),
        "SWITCHBOARD_MEDIA_URL_TTL": str(URL_TTL),
    }
    process = ServerProcess(root / "data", root / "server.log", env)
    process.start()
    user_id, token = create_user(process.base_url, "uploader")
    yield MediaServer(process, root, token, user_id)
    process.terminate()
    print("server log tail:\n" + process.log()[-4000:])


def png_bytes(size: tuple[int, int], mode: str = "RGB") -> bytes:
    output = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else None).save(output, "PNG")
    return output.getvalue()


def unique_bytes(label: str) -> bytes:
    return f"{label} {time.time_ns()}".encode()


def upload(
    server: MediaServer,
    data: bytes,
    *,
    name: str | None = None,
    content_type: str = "application/octet-stream",
    token: str | None = "",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"Content-Type": content_type, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token or server.token}"
    if name is not None:
        sent["X-File-Name"] = name
    return httpx.post(server.base_url + "/v1/media", content=data, headers=sent)


def uploaded(server: MediaServer, data: bytes, **options: Any) -> dict[str, Any]:
    response = upload(server, data, **options)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def signer_of(server: MediaServer) -> UrlSigner:
    return UrlSigner((server.process.data_dir / "media.key").read_bytes())


def signed_url(server: MediaServer, media_id: str, variant: str, expires: int) -> str:
    signature = signer_of(server).sign(media_id, variant, expires)
    suffix = "/thumbnail" if variant == "thumbnail" else ""
    return (
        f"{server.base_url}/v1/media/{media_id}{suffix}"
        f"?expires={expires}&sig={signature}"
    )


# Uploads.


def test_upload_png_returns_metadata(media_server: MediaServer) -> None:
    data = png_bytes((800, 600))
    before = time.time()
    body = uploaded(media_server, data, name="cat.png", content_type="image/png")
    assert body["id"] == hashlib.sha256(data).hexdigest()
    assert body["content_type"] == "image/png"
    assert body["size"] == len(data)
    assert body["name"] == "cat.png"
    assert (body["width"], body["height"]) == (800, 600)
    assert body["url"].startswith(f"{media_server.base_url}/v1/media/{body['id']}?")
    assert body["thumbnail_url"].startswith(
        f"{media_server.base_url}/v1/media/{body['id']}/thumbnail?"
    )
    assert before + URL_TTL - 5 <= body["expires_at"] / 1000 <= time.time() + URL_TTL


def test_download_returns_bytes_and_headers(media_server: MediaServer) -> None:
    data = png_bytes((50, 40))
    body = uploaded(media_server, data, name="small.png")
    response = httpx.get(body["url"])
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == f'"{body["id"]}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")
    assert 'filename="small.png"' in response.headers["content-disposition"]


def test_thumbnail_of_png_has_right_size(media_server: MediaServer) -> None:
    body = uploaded(media_server, png_bytes((1000, 400)))
    response = httpx.get(body["thumbnail_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    thumbnail = Image.open(io.BytesIO(response.content))
    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (320, 128)


def test_thumbnail_of_transparent_png_is_png(media_server: MediaServer) -> None:
    body = uploaded(media_server, png_bytes((640, 320), "RGBA"))
    response = httpx.get(body["thumbnail_url"])
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (320, 160)


def test_same_bytes_twice_store_one_blob(media_server: MediaServer) -> None:
    data = png_bytes((123, 45))
    first = uploaded(media_server, data, name="first.png")
    files_before = files_under(media_server.media_dir)
    second = uploaded(media_server, data, name="second.png")
    assert second["id"] == first["id"]
    assert files_under(media_server.media_dir) == files_before
    blobs = [p for p in files_before if p.name == first["id"]]
    assert len(blobs) == 1
    assert blobs[0].read_bytes() == data
    # The response names the file as this upload did; the record keeps the first.
    assert second["name"] == "second.png"
    urls = httpx.get(
        f"{media_server.base_url}/v1/media/{first['id']}/url",
        headers={"Authorization": f"Bearer {media_server.token}"},
    ).json()
    assert urls["name"] == "first.png"


def test_upload_leaves_no_temporary_files(media_server: MediaServer) -> None:
    uploaded(media_server, unique_bytes("temp"))
    assert list((media_server.media_dir / "tmp").iterdir()) == []


def test_upload_above_limit_by_content_length(media_server: MediaServer) -> None:
    files_before = files_under(media_server.root)
    response = upload(media_server, b"x" * (MAX_SIZE + 1))
    status, code, message = error_of(response)
    assert status == 413
    assert code == "content_too_large"
    assert f"exceeds the limit of {MAX_SIZE} bytes" in message
    assert files_under(media_server.root) - files_before == set()


def test_upload_above_limit_while_streaming(media_server: MediaServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_SIZE // 10_000 + 5):
            yield b"y" * 10_000

    files_before = files_under(media_server.root)
    response = httpx.post(
        media_server.base_url + "/v1/media",
        content=chunks(),  # no Content-Length: chunked transfer encoding
        headers={"Authorization": f"Bearer {media_server.token}"},
    )
    status, code, message = error_of(response)
    assert status == 413
    assert code == "content_too_large"
    assert str(MAX_SIZE) in message
    assert files_under(media_server.root) - files_before == set()
    assert list((media_server.media_dir / "tmp").iterdir()) == []


def test_upload_at_limit_accepted(media_server: MediaServer) -> None:
    data = unique_bytes("limit").ljust(MAX_SIZE, b"z")
    assert uploaded(media_server, data)["size"] == MAX_SIZE


def test_empty_upload_rejected(media_server: MediaServer) -> None:
    status, code, message = error_of(upload(media_server, b""))
    assert (status, code) == (400, "empty_file")
    assert "empty" in message


def test_undecodable_image_rejected(media_server: MediaServer) -> None:
    files_before = files_under(media_server.media_dir)
    data = b"\x89PNG\r\n\x1a\n" + unique_bytes("not really a png")
    status, code, message = error_of(upload(media_server, data))
    assert (status, code) == (400, "invalid_image")
    assert "does not decode as an image" in message
    assert "/" not in message  # no server path
    assert files_under(media_server.media_dir) == files_before


# Sniffing and serving of active content.


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<html><script>alert(document.cookie)</script></html>", "text/html"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        (b"just some bytes that are no image", "application/octet-stream"),
    ],
)
def test_fake_png_recorded_as_sniffed(
    media_server: MediaServer, data: bytes, expected: str
) -> None:
    data += unique_bytes(" ")
    body = uploaded(media_server, data, name="evil.png", content_type="image/png")
    assert body["content_type"] == expected
    assert body["width"] is None
    assert body["thumbnail_url"] is None

    response = httpx.get(body["url"])
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"].split(";")[0] == expected
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]


def test_pdf_served_as_attachment(media_server: MediaServer) -> None:
    body = uploaded(media_server, b"%PDF-1.4\n" + unique_bytes("pdf"))
    assert body["content_type"] == "application/pdf"
    response = httpx.get(body["url"])
    assert response.headers["content-disposition"].startswith("attachment;")


# File names never become paths.


HOSTILE_NAMES = [
    ("../../x", "x"),
    ("..\\x", "x"),
    ("/etc/x", "x"),
    ("%2e%2e%2fx", "x"),  # percent-encoded "../x"
    (quote("a\x00b/../../x\x00"), "x"),  # NUL bytes, percent-encoded for HTTP
    (quote("nul\x00.png"), "nul.png"),
    ("..", None),
    (quote("../" * 10), None),
]


@pytest.mark.parametrize(("name", "expected"), HOSTILE_NAMES)
def test_hostile_file_name_writes_only_blobs(
    media_server: MediaServer, name: str, expected: str | None
) -> None:
    etc_x_existed = Path("/etc/x").exists()
    files_before = files_under(media_server.root)
    body = uploaded(media_server, unique_bytes(name), name=name)
    assert body["name"] == expected
    new_files = files_under(media_server.root) - files_before
    assert new_files, "the upload stored no file"
    for path in new_files:
        relative = path.relative_to(media_server.media_dir).as_posix()
        assert KEY_PATTERN.fullmatch(relative), relative
        assert body["id"] in relative
    assert Path("/etc/x").exists() == etc_x_existed


def test_long_file_name_cut_for_display(media_server: MediaServer) -> None:
    files_before = files_under(media_server.root)
    body = uploaded(media_server, unique_bytes("long"), name="n" * 5000 + ".txt")
    assert len(body["name"]) == 255
    assert body["name"].endswith(".txt")
    for path in files_under(media_server.root) - files_before:
        assert KEY_PATTERN.fullmatch(
            path.relative_to(media_server.media_dir).as_posix()
        )


def test_utf8_file_name_in_content_disposition(media_server: MediaServer) -> None:
    name = "naïve résumé 😀.pdf"
    body = uploaded(media_server, b"%PDF-" + unique_bytes("utf8"), name=quote(name))
    assert body["name"] == name
    disposition = httpx.get(body["url"]).headers["content-disposition"]
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert disposition.isascii()


# Range requests.


@pytest.fixture(scope="module")
def ranged(media_server: MediaServer) -> tuple[str, bytes]:
    data = bytes(range(256)) * 40 + unique_bytes("ranges")
    return uploaded(media_server, data)["url"], data


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=1000-1999", 1000, 2000),
        ("bytes=-10", -10, None),
        ("bytes=10000-", 10000, None),
    ],
)
def test_range_request(
    ranged: tuple[str, bytes], header: str, start: int, end: int | None
) -> None:
    url, data = ranged
    response = httpx.get(url, headers={"Range": header})
    expected = data[start:end]
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    first = start if start >= 0 else len(data) + start
    last = first + len(expected) - 1
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"


def test_range_beyond_end_is_416(ranged: tuple[str, bytes]) -> None:
    url, data = ranged
    response = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})
    status, code, _ = error_of(response)
    assert (status, code) == (416, "range_not_satisfiable")
    assert response.headers["content-range"] == f"bytes */{len(data)}"


def test_if_range_mismatch_sends_whole_file(ranged: tuple[str, bytes]) -> None:
    url, data = ranged
    response = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert response.status_code == 200
    assert response.content == data


def test_if_none_match_gives_304(media_server: MediaServer) -> None:
    body = uploaded(media_server, unique_bytes("etag"))
    etag = f'"{body["id"]}"'
    for header in (etag, f'"other", W/{etag}', "*"):
        response = httpx.get(body["url"], headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
    response = httpx.get(body["url"], headers={"If-None-Match": '"other"'})
    assert response.status_code == 200


# Signed URLs.


def test_expired_url_rejected(media_server: MediaServer) -> None:
    body = uploaded(media_server, unique_bytes("expired"))
    url = signed_url(media_server, body["id"], "original", int(time.time()) - 10)
    status, code, message = error_of(httpx.get(url))
    assert (status, code) == (403, "url_expired")
    assert f"GET /v1/media/{body['id']}/url" in message


def test_url_signed_with_server_key_works(media_server: MediaServer) -> None:
    data = unique_bytes("self-signed")
    media_id = uploaded(media_server, data)["id"]
    url = signed_url(media_server, media_id, "original", int(time.time()) + 60)
    assert httpx.get(url).content == data


def tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    encoded = "&".join(f"{key}={value}" for key, value in query.items())
    return parts._replace(query=encoded).geturl()


def test_tampered_url_rejected(media_server: MediaServer) -> None:
    body = uploaded(media_server, unique_bytes("tamper"))
    signature = parse_qs(urlsplit(body["url"]).query)["sig"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    expires = parse_qs(urlsplit(body["url"]).query)["expires"][0]
    for url in (
        tampered(body["url"], sig=flipped),
        tampered(body["url"], expires=str(int(expires) + 3600)),
        tampered(body["url"], expires="-1"),
        tampered(body["url"], sig="not-hex"),
    ):
        status, code, message = error_of(httpx.get(url))
        assert (status, code) == (403, "invalid_signature"), url
        assert "signature does not match" in message


def test_thumbnail_signature_rejected_for_original(media_server: MediaServer) -> None:
    body = uploaded(media_server, png_bytes((33, 44)))
    thumbnail_query = urlsplit(body["thumbnail_url"]).query
    url = f"{media_server.base_url}/v1/media/{body['id']}?{thumbnail_query}"
    assert error_of(httpx.get(url))[:2] == (403, "invalid_signature")


def test_unsigned_url_rejected(media_server: MediaServer) -> None:
    body = uploaded(media_server, unique_bytes("unsigned"))
    response = httpx.get(f"{media_server.base_url}/v1/media/{body['id']}")
    status, code, message = error_of(response)
    assert (status, code) == (403, "missing_signature")
    assert "/url" in message


def test_fresh_urls_need_token(media_server: MediaServer) -> None:
    body = uploaded(media_server, png_bytes((10, 10)))
    url = f"{media_server.base_url}/v1/media/{body['id']}/url"
    assert httpx.get(url).status_code == 401
    response = httpx.get(url, headers={"Authorization": f"Bearer {media_server.token}"})
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["id"] == body["id"]
    assert (fresh["width"], fresh["height"]) == (10, 10)
    assert httpx.get(fresh["url"]).status_code == 200
    assert httpx.get(fresh["thumbnail_url"]).status_code == 200


def test_media_without_thumbnail_has_none(media_server: MediaServer) -> None:
    body = uploaded(media_server, unique_bytes("no thumbnail"))
    url = signed_url(media_server, body["id"], "thumbnail", int(time.time()) + 60)
    status, code, _ = error_of(httpx.get(url))
    assert (status, code) == (404, "thumbnail_not_found")


# Authentication and unknown ids.


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_upload_without_valid_token_is_401(
    media_server: MediaServer, token: str | None
) -> None:
    files_before = files_under(media_server.root)
    response = upload(media_server, unique_bytes("anonymous"), token=token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert files_under(media_server.root) - files_before == set()


@pytest.mark.parametrize("media_id", ["f" * 64, "F" * 64, "%2e%2e", "x" * 64, "ab"])
def test_unknown_id_is_404(media_server: MediaServer, media_id: str) -> None:
    response = httpx.get(
        f"{media_server.base_url}/v1/media/{media_id}/url",
        headers={"Authorization": f"Bearer {media_server.token}"},
    )
    status, code, _ = error_of(response)
    assert (status, code) == (404, "media_not_found")


def test_signed_unknown_id_is_404(media_server: MediaServer) -> None:
    url = signed_url(media_server, "e" * 64, "original", int(time.time()) + 60)
    assert error_of(httpx.get(url))[:2] == (404, "media_not_found")


def test_openapi_lists_media_routes(media_server: MediaServer) -> None:
    spec = httpx.get(media_server.base_url + "/openapi.json").json()
    for path in (
        "/v1/media",
        "/v1/media/{media_id}",
        "/v1/media/{media_id}/thumbnail",
        "/v1/media/{media_id}/url",
    ):
        assert path in spec["paths"]
