"""The SDK's Media value: the body of a media message and its parsing."""

from __future__ import annotations

import json

import pytest

from switchboard.client import MEDIA, TEXT, Media, Message
from switchboard.logic.content import validate_body

MEDIA_ID = "0123456789abcdef" * 4


def message(content_type: int, body: bytes) -> Message:
    return Message(
        id=1,
        seq=1,
        sender_id=1,
        recipient_id=2,
        sender_name="alice",
        recipient_name="bob",
        content_type=content_type,
        body=body,
        sent_at=0,
        outgoing=False,
    )


def test_body_round_trip_drops_urls() -> None:
    media = Media(
        id=MEDIA_ID,
        content_type="image/png",
        size=12_345,
        name="cat 😀.png",
        width=640,
        height=480,
        url="http://127.0.0.1/v1/media/x?expires=1&sig=2",
        thumbnail_url="http://127.0.0.1/v1/media/x/thumbnail?expires=1&sig=3",
        expires_at=1000,
    )
    body = media.to_body()
    assert "url" not in json.loads(body)
    assert Media.from_body(body) == Media(
        id=MEDIA_ID,
        content_type="image/png",
        size=12_345,
        name="cat 😀.png",
        width=640,
        height=480,
    )


def test_body_passes_server_check() -> None:
    validate_body(MEDIA, Media(MEDIA_ID, "audio/ogg", 99).to_body())
    validate_body(MEDIA, Media(MEDIA_ID, "image/gif", 9, "a.gif", 1, 2).to_body())


def test_body_leaves_out_unknown_fields() -> None:
    reference = json.loads(Media(MEDIA_ID, "video/mp4", 5).to_body())
    assert reference == {"media": MEDIA_ID, "content_type": "video/mp4", "size": 5}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff",
        b"[]",
        b"[" * 5000,
        b'{"content_type": "image/png", "size": 1}',
        b'{"media": "x", "size": 1}',
        b'{"media": "x", "content_type": "image/png", "size": "1"}',
        b'{"media": "x", "content_type": "image/png", "size": true}',
    ],
)
def test_malformed_body_gives_none(body: bytes) -> None:
    assert Media.from_body(body) is None


def test_mistyped_optional_fields_are_dropped() -> None:
    body = json.dumps(
        {"media": "x", "content_type": "a/b", "size": 1, "name": 5, "width": "9"}
    ).encode()
    assert Media.from_body(body) == Media("x", "a/b", 1)


def test_message_media_property() -> None:
    body = Media(MEDIA_ID, "image/png", 3).to_body()
    assert message(MEDIA, body).media == Media(MEDIA_ID, "image/png", 3)
    assert message(MEDIA, body).text is None
    assert message(TEXT, body).media is None
    assert message(MEDIA, b"not json").media is None
