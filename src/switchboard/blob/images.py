"""Image size and thumbnails with Pillow, guarded against decompression bombs.

A decompression bomb is a small file that declares a huge canvas, so that
decoding it takes gigabytes of memory. The pixel count is checked from the
header, before any pixel data is decoded.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from switchboard.errors import SwitchboardError

__all__ = ["THUMBNAIL_SIZE", "ImageInfo", "InvalidImage", "inspect_image"]

logger = logging.getLogger("switchboard.api")

THUMBNAIL_SIZE = 320
"""Maximum width and height of a thumbnail, in pixels."""

THUMBNAIL_JPEG_QUALITY = 80

# Errors Pillow raises for files it cannot identify or decode. Unidentified
# and truncated files raise OSError, and some decoders raise the others.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

# EXIF orientations 5 to 8 rotate by 90 or 270 degrees, swapping width and height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


class InvalidImage(SwitchboardError):
    """The file does not decode as an image, or has too many pixels."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Size of an image as displayed (EXIF rotation applied) and its thumbnail."""

    width: int
    height: int
    thumbnail: bytes
    thumbnail_type: str
    """``image/jpeg``, or ``image/png`` for images with transparency."""


def inspect_image(path: Path, max_pixels: int) -> ImageInfo:
    """Read the size of the image at ``path`` and make a thumbnail of it.

    The thumbnail fits in :data:`THUMBNAIL_SIZE` pixels square and keeps the
    aspect ratio. It is a PNG when the image has transparency, else a JPEG.
    Animated images give a thumbnail of their first frame. Raises
    InvalidImage when the file does not decode or has more than
    ``max_pixels`` pixels. Blocks: call it in a worker thread.
    """
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise InvalidImage(
                    f"image of {image.width}x{image.height} pixels exceeds the"
                    f" limit of {max_pixels} pixels"
                )
            orientation = image.getexif().get(_EXIF_ORIENTATION)
            width, height = image.size
            if orientation in _TRANSPOSING_ORIENTATIONS:
                width, height = height, width
            thumbnail, thumbnail_type = _make_thumbnail(image)
    except _DECODE_ERRORS as exc:
        # Pillow's messages name the spool file's path, which stays private.
        logger.info("image did not decode: %s", exc)
        raise InvalidImage(
            "the file does not decode as an image: its bytes start like an image"
            " format but are not a valid image of it"
        ) from exc
    return ImageInfo(width, height, thumbnail, thumbnail_type)


def _make_thumbnail(image: Image.Image) -> tuple[bytes, str]:
    # draft() lets the JPEG decoder scale down while decoding, so a large
    # photo is never decoded at full size.
    image.draft("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    upright = ImageOps.exif_transpose(image)
    output = io.BytesIO()
    if _has_transparency(upright):
        upright.convert("RGBA").save(output, "PNG", optimize=True)
        return output.getvalue(), "image/png"
    upright.convert("RGB").save(output, "JPEG", quality=THUMBNAIL_JPEG_QUALITY)
    return output.getvalue(), "image/jpeg"


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
