"""Signed media URLs: the HMAC and the key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from switchboard.api.signing import KEY_SIZE, UrlSigner, load_or_create_key

MEDIA_ID = "ab" * 32


def test_signature_verifies() -> None:
    signer = UrlSigner(bytes(range(32)))
    signature = signer.sign(MEDIA_ID, "original", 1_800_000_000)
    assert len(signature) == 64
    assert signer.verify(MEDIA_ID, "original", 1_800_000_000, signature)
    assert signer.verify(MEDIA_ID, "original", 1_800_000_000, signature.upper())


@pytest.mark.parametrize(
    ("media_id", "variant", "expires"),
    [
        ("cd" * 32, "original", 1_800_000_000),
        (MEDIA_ID, "thumbnail", 1_800_000_000),
        (MEDIA_ID, "original", 1_800_000_001),
    ],
)
def test_signature_binds_every_field(media_id: str, variant: str, expires: int) -> None:
    signer = UrlSigner(bytes(range(32)))
    signature = signer.sign(MEDIA_ID, "original", 1_800_000_000)
    assert not signer.verify(media_id, variant, expires, signature)


@pytest.mark.parametrize("signature", ["", "00" * 32, "zz", "é" * 64])
def test_wrong_signature_rejected(signature: str) -> None:
    signer = UrlSigner(bytes(range(32)))
    assert not signer.verify(MEDIA_ID, "original", 1_800_000_000, signature)


def test_other_key_rejects_signature() -> None:
    signature = UrlSigner(bytes(32)).sign(MEDIA_ID, "original", 1)
    assert not UrlSigner(bytes([1]) * 32).verify(MEDIA_ID, "original", 1, signature)


def test_signer_rejects_short_key() -> None:
    with pytest.raises(ValueError, match="16 bytes: need 32"):
        UrlSigner(bytes(16))


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "media.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_SIZE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media.key"]


def test_key_files_differ_between_servers(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path / "a.key") != load_or_create_key(
        tmp_path / "b.key"
    )


def test_key_file_of_wrong_size_rejected(tmp_path: Path) -> None:
    path = tmp_path / "media.key"
    path.write_bytes(b"short")
    os.chmod(path, 0o600)
    with pytest.raises(ValueError, match="5 bytes instead of 32; delete the file"):
        load_or_create_key(path)
