"""CLI output of group messages and notices."""

from __future__ import annotations

import json

import pytest

from switchboard.cli.output import format_message, format_notice, message_json
from switchboard.client import NOTICE, TEXT, GroupNotice, Message

NAMES = {1: "alice", 2: "bob", 3: "carol"}


def group_message(content_type: int, body: bytes, **fields: object) -> Message:
    values: dict[str, object] = {
        "id": 9,
        "seq": 4,
        "sender_id": 1,
        "recipient_id": 0,
        "sender_name": "alice",
        "recipient_name": None,
        "content_type": content_type,
        "body": body,
        "sent_at": 0,
        "outgoing": False,
        "group_id": 7,
        "group_name": "friends",
    }
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


def notice_body(event: str, **fields: object) -> bytes:
    return json.dumps({"event": event, "group": 7, **fields, "by": 1}).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            notice_body("group_created", name="friends", users=[1, 2, 3]),
            "alice created the group 'friends' with bob, carol",
        ),
        (
            notice_body("group_created", name="solo", users=[1]),
            "alice created the group 'solo'",
        ),
        (notice_body("member_added", users=[2], role="member"), "alice added bob"),
        (
            notice_body("member_added", users=[2, 4], role="admin"),
            "alice added bob, user#4 as admin",
        ),
        (notice_body("member_removed", users=[3]), "alice removed carol"),
        (notice_body("member_left", users=[1]), "alice left the group"),
        (notice_body("role_changed", users=[2], role="admin"), "alice made bob admin"),
        (
            notice_body("group_renamed", name="team"),
            "alice renamed the group to 'team'",
        ),
        (notice_body("future_event"), "alice: future_event"),
    ],
)
def test_notice_sentences(body: bytes, expected: str) -> None:
    notice = GroupNotice.from_body(body)
    assert notice is not None
    assert format_notice(notice, NAMES) == expected


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"event": 1, "group": 7, "by": 1}', b'{"event": "x"}'],
)
def test_invalid_notice_bodies(body: bytes) -> None:
    assert GroupNotice.from_body(body) is None


def test_group_text_line() -> None:
    line = format_message(group_message(TEXT, b"hi\nall"))
    assert line.endswith(" alice -> [friends]: hi\\nall")


def test_notice_line_and_unknown_group_name() -> None:
    message = group_message(
        NOTICE, notice_body("member_left", users=[1]), group_name=None
    )
    assert format_message(message, names=NAMES).endswith(
        " [group#7] alice left the group"
    )


def test_group_message_json() -> None:
    item = message_json(group_message(TEXT, b"hi", mentions=(2,)))
    assert (item["to"], item["to_id"], item["group"]) == (None, None, 7)
    assert (item["group_name"], item["mentions"], item["text"]) == (
        "friends",
        [2],
        "hi",
    )
    notice = message_json(group_message(NOTICE, notice_body("member_left", users=[1])))
    assert notice["notice"]["event"] == "member_left"
    assert notice["notice"]["user_ids"] == [1]


def test_one_to_one_json_has_no_group_fields() -> None:
    item = message_json(group_message(TEXT, b"hi", group_id=0, recipient_id=2))
    assert "group" not in item
    assert item["to_id"] == 2


def test_message_json_large_group_seq() -> None:
    item = message_json(group_message(TEXT, b"hi all", seq=0, group_seq=42))

    assert item["group_seq"] == 42
    assert item["seq"] is None
    assert "group_seq" not in message_json(group_message(TEXT, b"hi"))
