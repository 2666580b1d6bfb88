"""Content types of uploads, sniffed from their first bytes.

The server never trusts the ``Content-Type`` a client sends: a file claimed
to be ``image/png`` that starts with ``<html>`` is recorded as ``text/html``
and served as a download. Only the formats below are recognised, each by its
magic number; anything else is ``application/octet-stream``.
"""

from __future__ import annotations

__all__ = [
    "IMAGE_TYPES",
    "INLINE_SAFE_TYPES",
    "OCTET_STREAM",
    "SNIFF_SIZE",
    "sniff_content_type",
]

SNIFF_SIZE = 1024
"""Bytes from the start of a file that :func:`sniff_content_type` looks at."""

OCTET_STREAM = "application/octet-stream"

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Types the server decodes to record width and height and make a thumbnail."""

INLINE_SAFE_TYPES = IMAGE_TYPES | {
    "video/mp4",
    "audio/mp4",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
}
"""Types a browser may show inline: they cannot run script. Every other type,
PDF included (PDF viewers run JavaScript), is served as an attachment."""

_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_MP4_VIDEO_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"dash",
    b"mmp4",
}

# Start tags that make a file HTML when it begins with one of them.
_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
)
_TAG_ENDS = b" >\t\n\x0c\r"
"""Bytes that may follow a start tag's name. The end of the input counts too,
because ``b"" in _TAG_ENDS`` is true."""


def sniff_content_type(head: bytes) -> str:
    """Return the content type of a file whose first bytes are ``head``.

    ``head`` should hold the first :data:`SNIFF_SIZE` bytes, or the whole
    file when it is shorter.
    """
    return _binary_type(head) or _markup_type(head) or OCTET_STREAM


def _binary_type(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"OggS"):
        return _ogg_type(head)
    if head[4:8] == b"ftyp":
        return _mp4_type(head[8:12])
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    return _mpeg_audio_type(head)


def _ogg_type(head: bytes) -> str:
    # The first Ogg page has a 27-byte header and, for one segment, a 1-byte
    # segment table. The codec's identification header follows at offset 28.
    codec = head[28:36]
    if codec == b"OpusHead" or codec.startswith(b"\x01vorbis"):
        return "audio/ogg"
    return "application/ogg"


def _mp4_type(brand: bytes) -> str | None:
    if brand in _MP4_AUDIO_BRANDS:
        return "audio/mp4"
    if brand in _MP4_VIDEO_BRANDS:
        return "video/mp4"
    return None


def _mpeg_audio_type(head: bytes) -> str | None:
    """Recognise a raw MPEG audio frame header: AAC in ADTS, or MP3."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0b11
    if layer == 0:
        # ADTS: 12 sync bits, then MPEG version, layer 00 and protection.
        return "audio/aac" if head[1] & 0xF6 == 0xF0 else None
    version = (head[1] >> 3) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    if version == 0b01 or bitrate == 0b1111 or sample_rate == 0b11:
        return None  # reserved values, so not an MPEG audio frame
    return "audio/mpeg"


def _markup_type(head: bytes) -> str | None:
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\n\r\x0c").lower()
    if not text.startswith(b"<"):
        return None
    if text.startswith((b"<svg", b"<!doctype svg")):
        return "image/svg+xml"
    if text.startswith(b"<?xml"):
        if b"<svg" in text:
            return "image/svg+xml"
        if b"<html" in text:
            return "application/xhtml+xml"
        return "application/xml"
    if text.startswith(b"<!--"):
        # A comment may open either kind of document.
        if b"<svg" in text and b"<html" not in text:
            return "image/svg+xml"
        return "text/html"
    for start in _HTML_STARTS:
        if text.startswith(start) and text[len(start) : len(start) + 1] in _TAG_ENDS:
            return "text/html"
    return None
