"""Media metadata records and the cleaning of file names for display."""

from __future__ import annotations

import dataclasses

import pytest

from switchboard.blob.metadata import MAX_NAME_LENGTH, MediaMetadata, display_name

RECORD = MediaMetadata(
    sha256="a" * 64,
    content_type="image/png",
    size=1234,
    name="cat.png",
    width=640,
    height=480,
    thumbnail_key="aa/aa/" + "a" * 64 + ".thumb",
    thumbnail_type="image/jpeg",
    thumbnail_size=99,
    uploader=7,
    created_at=1_796_385_600_000,
)


def test_metadata_json_round_trip() -> None:
    record = dataclasses.replace(RECORD, name="naïve 😀.png")
    assert MediaMetadata.from_json(record.to_json()) == record


@pytest.mark.parametrize("data", [b"", b"[]", b'{"sha256": "x"}', b"\xff", b"{"])
def test_metadata_from_invalid_json(data: bytes) -> None:
    with pytest.raises(ValueError, match="invalid media metadata"):
        MediaMetadata.from_json(data)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cat.png", "cat.png"),
        ("../../x", "x"),
        ("..\\x", "x"),
        ("/etc/x", "x"),
        ("C:\\Users\\me\\x.txt", "x.txt"),
        ("%2e%2e%2fx", "%2e%2e%2fx"),  # percent-decoding is the caller's job
        ("a\x00b", "ab"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override
        ("  spaced  ", "spaced"),
        ("..", None),
        (".", None),
        ("", None),
        ("dir/", None),
        ("\x00", None),
        (".bashrc", ".bashrc"),
        ("naïve 😀.png", "naïve 😀.png"),
    ],
)
def test_display_name(raw: str, expected: str | None) -> None:
    assert display_name(raw) == expected


def test_long_name_keeps_extension() -> None:
    name = display_name("x" * 5000 + ".png")
    assert name is not None
    assert len(name) == MAX_NAME_LENGTH
    assert name.endswith("x.png")


def test_long_name_without_extension_is_cut() -> None:
    assert display_name("y" * 5000) == "y" * MAX_NAME_LENGTH
