"""Conformance suite for BlobStore implementations, run against each of them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from switchboard.blob.base import (
    BlobNotFound,
    BlobStore,
    blob_key,
    check_key,
    is_sha256,
)
from switchboard.blob.local import LocalBlobStore

CONTENT = bytes(range(256)) * 1000  # 256,000 bytes: several read chunks
KEY = blob_key(hashlib.sha256(CONTENT).hexdigest())


@pytest.fixture(params=["local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    # A new implementation adds its name to params and a branch here.
    assert request.param == "local"
    yield LocalBlobStore(tmp_path / "blobs")


async def chunks_of(data: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(
    store: BlobStore, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.open(key, start, end)])


async def test_put_then_read_whole_blob(store: BlobStore) -> None:
    size = await store.put(KEY, chunks_of(CONTENT))
    assert size == len(CONTENT)
    assert await read_all(store, KEY) == CONTENT
    assert await store.read_bytes(KEY) == CONTENT


async def test_size_and_exists(store: BlobStore) -> None:
    assert not await store.exists(KEY)
    await store.put(KEY, chunks_of(CONTENT))
    assert await store.exists(KEY)
    assert await store.size(KEY) == len(CONTENT)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (0, 100_000), (65_535, 65_537), (1000, None), (255_990, 256_000), (5, 5)],
)
async def test_open_byte_range(store: BlobStore, start: int, end: int | None) -> None:
    await store.put(KEY, chunks_of(CONTENT))
    assert await read_all(store, KEY, start, end) == CONTENT[start:end]


async def test_open_range_past_end_stops_at_end(store: BlobStore) -> None:
    await store.put(KEY, chunks_of(CONTENT))
    assert await read_all(store, KEY, 255_000, 300_000) == CONTENT[255_000:]


async def test_missing_blob_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await read_all(store, KEY)
    with pytest.raises(BlobNotFound):
        await store.size(KEY)
    with pytest.raises(BlobNotFound):
        await store.read_bytes(KEY)


async def test_delete(store: BlobStore) -> None:
    await store.put(KEY, chunks_of(CONTENT))
    assert await store.delete(KEY) is True
    assert not await store.exists(KEY)
    assert await store.delete(KEY) is False


async def test_put_replaces_existing_blob(store: BlobStore) -> None:
    key = blob_key("a" * 64, ".json")
    await store.put_bytes(key, b"first")
    await store.put_bytes(key, b"second")
    assert await store.read_bytes(key) == b"second"


async def test_put_file_moves_file(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "upload"
    source.write_bytes(CONTENT)
    await store.put_file(KEY, source)
    assert not source.exists()
    assert await store.read_bytes(KEY) == CONTENT


async def test_failed_put_leaves_nothing(store: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put(KEY, broken())
    assert not await store.exists(KEY)


async def test_empty_blob(store: BlobStore) -> None:
    key = blob_key(hashlib.sha256(b"").hexdigest())
    await store.put_bytes(key, b"")
    assert await store.size(key) == 0
    assert await store.read_bytes(key) == b""


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "ab/cd/" + "a" * 64,  # directories do not match the digest
        "aa/aa/" + "a" * 63,
        "aa/aa/" + "A" * 64,
        "aa/aa/" + "a" * 64 + "/../x",
        "aa/aa/" + "a" * 64 + ".JSON",
        "aa\\aa\\" + "a" * 64,
        "aa/aa/" + "a" * 64 + "\x00",
        "",
    ],
)
async def test_invalid_key_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put_bytes(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.size(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.delete(key)


def test_blob_key_layout() -> None:
    digest = hashlib.sha256(b"hello").hexdigest()
    assert blob_key(digest) == f"{digest[:2]}/{digest[2:4]}/{digest}"
    assert blob_key(digest, ".thumb") == f"{digest[:2]}/{digest[2:4]}/{digest}.thumb"
    assert check_key(blob_key(digest, ".json")) == blob_key(digest, ".json")


@pytest.mark.parametrize("digest", ["", "a" * 63, "g" * 64, "A" * 64, "../" + "a" * 61])
def test_blob_key_rejects_non_digest(digest: str) -> None:
    assert not is_sha256(digest)
    with pytest.raises(ValueError, match="invalid SHA-256"):
        blob_key(digest)


@pytest.mark.parametrize("suffix", ["/x", ".", ".a/b", "json", ".toolongsuffixxxxx"])
def test_blob_key_rejects_bad_suffix(suffix: str) -> None:
    with pytest.raises(ValueError, match="invalid key suffix"):
        blob_key("a" * 64, suffix)


async def test_local_store_layout_and_temp_dir(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put(KEY, chunks_of(CONTENT))
    digest = KEY.rsplit("/", 1)[1]
    assert (
        tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    ).read_bytes() == CONTENT
    assert list(store.temp_dir.iterdir()) == []


async def test_local_store_failed_put_removes_temp_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await store.put(KEY, broken())
    assert list(store.temp_dir.iterdir()) == []


def test_local_store_removes_only_stale_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    stale = store.temp_dir / "put-stale"
    fresh = store.temp_dir / "put-fresh"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (0, 0))
    assert store.remove_stale_temp_files(max_age=3600) == 1
    assert not stale.exists()
    assert fresh.exists()
