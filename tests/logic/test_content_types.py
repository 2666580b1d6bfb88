"""Checks of message bodies by content type: text and media references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.errors import ErrorCode, RequestError
from switchboard.logic.content import MEDIA, SYSTEM_CONTENT_TYPE, TEXT, validate_body

MEDIA_ID = "0123456789abcdef" * 4


def media_body(**fields: Any) -> bytes:
    reference: dict[str, Any] = {
        "media": MEDIA_ID,
        "content_type": "image/png",
        "size": 12_345,
    }
    reference.update(fields)
    return json.dumps(reference).encode()


def reason_of(content_type: int, body: bytes) -> str:
    with pytest.raises(RequestError) as caught:
        validate_body(content_type, body)
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    return caught.value.reason


def test_text_must_be_utf8() -> None:
    validate_body(TEXT, "héllo".encode())
    assert reason_of(TEXT, b"ab\xff") == "text body is not valid UTF-8 at byte 2"


@pytest.mark.parametrize(
    "body",
    [
        media_body(),
        media_body(name="cat.png", width=640, height=480),
        media_body(size=0),
        media_body(name="naïve 😀.png"),
        media_body(future_field={"nested": True}),
    ],
)
def test_valid_media_body(body: bytes) -> None:
    validate_body(MEDIA, body)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"\xff", "media body is not valid UTF-8"),
        (b"not json", "not valid JSON"),
        (b"[" * 5000, "nested too deeply"),
        (b"[]", "expected a JSON object"),
        (media_body(media=None), "'media' must be the id"),
        (media_body(media="ABC"), 'got "ABC"'),
        (media_body(media=MEDIA_ID.upper()), "64 lowercase hex digits"),
        (media_body(media="../" + MEDIA_ID[3:]), "'media' must be the id"),
        (media_body(content_type=None), "'content_type' must be a type"),
        (media_body(content_type="image"), "'content_type' must be a type"),
        (media_body(content_type="text/html; charset=x"), "'content_type'"),
        (media_body(size=None), "'size' must be a whole number of bytes"),
        (media_body(size=-1), "got -1"),
        (media_body(size=1.5), "'size'"),
        (media_body(size=True), "got true"),
        (media_body(size=2**63), "'size'"),
        (media_body(width=0), "'width' must be a whole number of pixels"),
        (media_body(height="480"), "'height'"),
        (media_body(name=""), "'name' must be a string of 1 to 255"),
        (media_body(name="x" * 256), "'name' must be a string of 1 to 255"),
        (media_body(name=7), "'name' must be a string"),
        (media_body(name="a\x00b"), "'name' must not contain control characters"),
        (media_body(name="a\x9bb"), "'name' must not contain control characters"),
    ],
)
def test_invalid_media_body(body: bytes, fragment: str) -> None:
    reason = reason_of(MEDIA, body)
    assert reason.startswith(("invalid media body: ", "media body is not valid"))
    assert fragment in reason


def test_other_content_types_are_opaque() -> None:
    validate_body(99, b"\xff\x00 anything")


def test_notice_content_type_is_reserved() -> None:
    body = b'{"event":"member_added","group":1,"users":[2],"by":1}'
    assert "reserved for the server's group notices" in reason_of(
        SYSTEM_CONTENT_TYPE, body
    )


@pytest.mark.parametrize("body", [b"", b" ", b"\n\t ", "\u3000".encode()])
def test_empty_or_blank_text_is_rejected(body: bytes) -> None:
    assert "empty or only whitespace" in reason_of(TEXT, body)


@pytest.mark.parametrize("content_type", [MEDIA, 99])
def test_empty_body_is_rejected(content_type: int) -> None:
    assert "is empty" in reason_of(content_type, b"")


def test_text_with_whitespace_around_is_kept() -> None:
    validate_body(TEXT, b"  hi\n")


def test_protocol_doc_media_example_is_valid() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    section = doc.read_text().split("## Content types", 1)[1]
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    validate_body(MEDIA, example.strip().encode())
