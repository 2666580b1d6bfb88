"""Content type sniffing from magic numbers."""

from __future__ import annotations

import io
import struct
import wave

import pytest
from PIL import Image

from switchboard.blob.sniff import (
    INLINE_SAFE_TYPES,
    OCTET_STREAM,
    SNIFF_SIZE,
    sniff_content_type,
)


def pillow_bytes(format: str, mode: str = "RGB") -> bytes:
    output = io.BytesIO()
    Image.new(mode, (4, 3)).save(output, format)
    return output.getvalue()


def wav_bytes() -> bytes:
    output = io.BytesIO()
    with wave.open(output, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0\0" * 80)
    return output.getvalue()


def ogg_page(codec_header: bytes) -> bytes:
    # 27-byte page header with one segment, then the segment table.
    header = b"OggS" + bytes(22) + b"\x01"
    return header + bytes([len(codec_header)]) + codec_header


def mp4_bytes(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + bytes(4) + b"isomiso2"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (pillow_bytes("PNG"), "image/png"),
        (pillow_bytes("JPEG"), "image/jpeg"),
        (pillow_bytes("GIF", "P"), "image/gif"),
        (pillow_bytes("WEBP"), "image/webp"),
        (wav_bytes(), "audio/wav"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (ogg_page(b"OpusHead\x01\x01"), "audio/ogg"),
        (ogg_page(b"\x01vorbis\x00\x00"), "audio/ogg"),
        (ogg_page(b"\x80theora"), "application/ogg"),
        (mp4_bytes(b"isom"), "video/mp4"),
        (mp4_bytes(b"mp42"), "video/mp4"),
        (mp4_bytes(b"M4A "), "audio/mp4"),
        (mp4_bytes(b"heic"), OCTET_STREAM),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + bytes(100), "audio/mpeg"),  # MPEG-1 layer III
        (b"\xff\xf1\x50\x80" + bytes(100), "audio/aac"),  # ADTS, MPEG-4
        (b"\xff\xf9\x50\x80" + bytes(100), "audio/aac"),  # ADTS, MPEG-2
        (b"\xff\xfb\xf0\x64", OCTET_STREAM),  # bitrate index 15 is invalid
        (b"\xff\xfb\x9c\x64", OCTET_STREAM),  # sample rate index 3 is reserved
        (b"", OCTET_STREAM),
        (b"hello, world", OCTET_STREAM),
        (b"\x00\x01\x02\x03", OCTET_STREAM),
    ],
)
def test_sniff_magic_numbers(data: bytes, expected: str) -> None:
    assert sniff_content_type(data[:SNIFF_SIZE]) == expected


@pytest.mark.parametrize(
    "markup",
    [
        b"<html><body>hi</body></html>",
        b"<!DOCTYPE html><title>x</title>",
        b"  \n\t<HTML>",
        b"\xef\xbb\xbf<html>",
        b"<script>alert(1)</script>",
        b"<body onload=alert(1)>",
        b"<p>hi",
        b"<b>bold</b>",
        b"<iframe src=x>",
        b"<!-- comment --><div>",
        b"<a href=x>",
        b"<html",
    ],
)
def test_sniff_html(markup: bytes) -> None:
    assert sniff_content_type(markup) == "text/html"


@pytest.mark.parametrize(
    "markup",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x"><svg/>',
        b"<!-- made by hand -->\n<svg/>",
        b"  <SVG/>",
    ],
)
def test_sniff_svg(markup: bytes) -> None:
    assert sniff_content_type(markup) == "image/svg+xml"


def test_sniff_xml_and_xhtml() -> None:
    assert sniff_content_type(b'<?xml version="1.0"?><note/>') == "application/xml"
    xhtml = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
    assert sniff_content_type(xhtml) == "application/xhtml+xml"


def test_sniff_tag_prefix_is_not_html() -> None:
    # "<abbr" starts with "<a" but is not the tag the HTML rule looks for.
    assert sniff_content_type(b"<abbreviation>") == OCTET_STREAM


def test_html_after_png_magic_is_png() -> None:
    # Recorded as PNG, and served as image/png with nosniff, which browsers
    # render as an image, never as a page.
    data = b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script>"
    assert sniff_content_type(data) == "image/png"


@pytest.mark.parametrize(
    "content_type",
    ["text/html", "image/svg+xml", "application/xml", "application/pdf", OCTET_STREAM],
)
def test_active_types_are_not_inline_safe(content_type: str) -> None:
    assert content_type not in INLINE_SAFE_TYPES
