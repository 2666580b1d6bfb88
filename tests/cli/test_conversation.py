"""Status lines of ``switchboard chat``: typing and presence."""

from __future__ import annotations

import asyncio

from switchboard.cli.conversation import Conversation
from switchboard.client import Group, Message, PresenceChanged, TypingChanged, User

BOB = User(2, "bob")


def typing(user_id: int = 2, group_id: int = 0, active: bool = True) -> TypingChanged:
    return TypingChanged(
        user_id, "bob" if user_id == 2 else "carol", group_id, active, 6
    )


async def test_typing_shown_once_until_it_ends() -> None:
    conversation = Conversation(peer=BOB)
    assert conversation.describe(typing()) == "-- bob is typing"
    assert conversation.describe(typing()) is None
    assert conversation.describe(typing(active=False)) is None
    assert conversation.describe(typing()) == "-- bob is typing"
    message = Message(1, 1, 2, 1, "bob", "me", 0, b"hi", 0, False)
    conversation.message_arrived(message)
    assert conversation.describe(typing()) == "-- bob is typing"


async def test_expired_typing_is_shown_again() -> None:
    conversation = Conversation(peer=BOB)
    conversation.describe(TypingChanged(2, "bob", 0, True, 0.05))
    await asyncio.sleep(0.1)
    assert conversation.describe(typing()) == "-- bob is typing"


async def test_typing_elsewhere_is_not_shown() -> None:
    conversation = Conversation(peer=BOB)
    assert conversation.describe(typing(user_id=3)) is None
    assert conversation.describe(typing(group_id=5)) is None
    in_group = Conversation(group=Group(5, "team", 1, 0))
    assert in_group.describe(typing(user_id=3, group_id=5)) == "-- carol is typing"
    assert in_group.describe(typing(group_id=0)) is None


async def test_presence_lines() -> None:
    conversation = Conversation(peer=BOB)
    assert conversation.describe(PresenceChanged(2, "bob", True, 0)) == (
        "-- bob is online"
    )
    assert conversation.describe(PresenceChanged(2, "bob", True, 0)) is None
    line = conversation.describe(PresenceChanged(2, "bob", False, 1_700_000_000_000))
    assert line is not None
    assert line.startswith("-- bob is offline, last seen 20")
    assert conversation.describe(PresenceChanged(2, "bob", False, 0)) == (
        "-- bob is offline"
    )
    assert conversation.describe(PresenceChanged(3, "carol", True, 0)) is None
