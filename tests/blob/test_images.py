"""Image size, thumbnails and the decompression bomb guard."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from switchboard.blob.images import THUMBNAIL_SIZE, InvalidImage, inspect_image

MAX_PIXELS = 50_000_000


def save(tmp_path: Path, image: Image.Image, format: str, **options: object) -> Path:
    path = tmp_path / f"image.{format.lower()}"
    image.save(path, format, **options)
    return path


def thumbnail_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1000, 500), (320, 160)),
        ((500, 1000), (160, 320)),
        ((640, 640), (320, 320)),
        ((100, 50), (100, 50)),  # smaller images keep their size
        ((4000, 3), (320, 1)),
    ],
)
def test_thumbnail_fits_in_box(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    path = save(tmp_path, Image.new("RGB", size, (10, 200, 30)), "PNG")
    info = inspect_image(path, MAX_PIXELS)
    assert (info.width, info.height) == size
    assert thumbnail_of(info.thumbnail).size == expected
    assert max(expected) <= THUMBNAIL_SIZE


def test_opaque_image_gets_jpeg_thumbnail(tmp_path: Path) -> None:
    path = save(tmp_path, Image.new("RGB", (800, 600), (255, 0, 0)), "JPEG")
    info = inspect_image(path, MAX_PIXELS)
    assert info.thumbnail_type == "image/jpeg"
    assert thumbnail_of(info.thumbnail).format == "JPEG"


@pytest.mark.parametrize("format", ["PNG", "WEBP"])
def test_transparent_image_gets_png_thumbnail(tmp_path: Path, format: str) -> None:
    path = save(tmp_path, Image.new("RGBA", (800, 600), (0, 0, 0, 0)), format)
    info = inspect_image(path, MAX_PIXELS)
    assert info.thumbnail_type == "image/png"
    thumbnail = thumbnail_of(info.thumbnail)
    assert thumbnail.format == "PNG"
    assert thumbnail.mode == "RGBA"


def test_gif_with_transparency(tmp_path: Path) -> None:
    path = save(tmp_path, Image.new("P", (30, 20)), "GIF", transparency=0)
    info = inspect_image(path, MAX_PIXELS)
    assert (info.width, info.height) == (30, 20)
    assert info.thumbnail_type == "image/png"


def test_exif_rotation_swaps_width_and_height(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = save(tmp_path, Image.new("RGB", (1000, 500)), "JPEG", exif=exif)
    info = inspect_image(path, MAX_PIXELS)
    assert (info.width, info.height) == (500, 1000)
    assert thumbnail_of(info.thumbnail).size == (160, 320)


def test_too_many_pixels_is_invalid(tmp_path: Path) -> None:
    path = save(tmp_path, Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(InvalidImage, match="200x100 pixels exceeds the limit of 19999"):
        inspect_image(path, 19_999)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge canvas: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(100)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [8_000, 100_000])
def test_decompression_bomb_is_invalid(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(InvalidImage):
        inspect_image(path, MAX_PIXELS)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"garbage" * 20,
        b"\xff\xd8\xff" + bytes(50),
        b"GIF89a",
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
        b"<svg/>",
    ],
)
def test_undecodable_file_is_invalid(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken"
    path.write_bytes(data)
    with pytest.raises(InvalidImage, match="does not decode as an image"):
        inspect_image(path, MAX_PIXELS)


def test_truncated_png_is_invalid(tmp_path: Path) -> None:
    path = save(tmp_path, Image.effect_noise((400, 400), 64).convert("RGB"), "PNG")
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InvalidImage):
        inspect_image(path, MAX_PIXELS)
