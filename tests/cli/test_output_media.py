"""CLI output of media messages: the one-line form and the JSON object."""

from __future__ import annotations

import pytest

from switchboard.cli.output import (
    describe_media,
    format_message,
    format_size,
    message_json,
)
from switchboard.client import MEDIA, Media, Message

MEDIA_ID = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KB"),
        (12_345, "12 KB"),
        (1024**2 - 1, "1024 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**3 // 2, "1.5 GB"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


def test_describe_media() -> None:
    media = Media(MEDIA_ID, "image/png", 12_345, "name.png")
    assert describe_media(media) == "[file name.png image/png 12 KB]"
    unnamed = Media(MEDIA_ID, "audio/ogg", 10)
    assert describe_media(unnamed) == "[file 0123456789ab audio/ogg 10 B]"


def media_message() -> Message:
    media = Media(MEDIA_ID, "image/png", 12_345, "name.png", 64, 48)
    return Message(
        id=7,
        seq=3,
        sender_id=1,
        recipient_id=2,
        sender_name="alice",
        recipient_name="bob",
        content_type=MEDIA,
        body=media.to_body(),
        sent_at=0,
        outgoing=False,
    )


def test_format_media_message() -> None:
    line = format_message(media_message())
    assert line.endswith("alice -> bob: [file name.png image/png 12 KB]")


def test_media_message_json() -> None:
    item = message_json(media_message())
    assert item["text"] is None
    assert item["media"] == {
        "id": MEDIA_ID,
        "content_type": "image/png",
        "size": 12_345,
        "name": "name.png",
        "width": 64,
        "height": 48,
    }
