"""The conversation of ``switchboard chat``: a user or a group, and the
typing and presence lines it shows.

Status lines go to stderr, so stdout keeps one line per message. The chat
reads whole lines from stdin, so it cannot tell when its own user starts
typing, and it sends no typing indicators itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field

from switchboard.cli.terminal import escape
from switchboard.client import (
    Client,
    Group,
    Message,
    PresenceChanged,
    Sent,
    TypingChanged,
    User,
)

__all__ = ["Conversation", "print_signals"]


@dataclass(slots=True)
class Conversation:
    """One chat partner, ``peer`` or ``group``, and what the chat shows of it."""

    peer: User | None = None
    group: Group | None = None
    typing_until: dict[int, float] = field(default_factory=dict)
    """Users shown as typing, and the loop time their indicator ends."""
    shown_presence: tuple[bool, int] | None = None

    @classmethod
    async def open(cls, client: Client, args: argparse.Namespace) -> Conversation:
        """Look up the user NAME or the group --group ID of the arguments."""
        if args.group is not None:
            return cls(group=await client.group(args.group))
        return cls(peer=await client.get_user(args.name))

    @property
    def title(self) -> str:
        if self.group is not None:
            return f"group {self.group.name}"
        assert self.peer is not None
        return self.peer.name

    @property
    def history_command(self) -> str:
        if self.group is not None:
            return f"switchboard history --group {self.group.id}"
        assert self.peer is not None
        return f"switchboard history {self.peer.name}"

    async def send(self, client: Client, text: str) -> Sent:
        if self.group is not None:
            return await client.send_group(self.group.id, text)
        assert self.peer is not None
        return await client.send(self.peer.id, text)

    async def watch(self, client: Client) -> None:
        """Watch the peer's presence; a group chat watches nobody."""
        if self.peer is not None:
            await client.watch_presence([self.peer.id])

    def message_arrived(self, message: Message) -> None:
        """End the typing indicator of the message's sender."""
        self.typing_until.pop(message.sender_id, None)

    def describe(self, event: TypingChanged | PresenceChanged) -> str | None:
        """Return the status line an event shows, or None when it shows none."""
        if isinstance(event, PresenceChanged):
            return self._describe_presence(event)
        return self._describe_typing(event)

    def _describe_presence(self, event: PresenceChanged) -> str | None:
        if self.peer is None or event.user_id != self.peer.id:
            return None
        state = (event.online, event.last_seen)
        if state == self.shown_presence:
            return None
        self.shown_presence = state
        if event.online:
            return f"-- {self.peer.name} is online"
        if event.last_seen:
            seen = time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(event.last_seen / 1000)
            )
            return f"-- {self.peer.name} is offline, last seen {seen}"
        return f"-- {self.peer.name} is offline"

    def _describe_typing(self, event: TypingChanged) -> str | None:
        if self.group is not None:
            relevant = event.group_id == self.group.id
        else:
            assert self.peer is not None
            relevant = event.group_id == 0 and event.user_id == self.peer.id
        if not relevant:
            return None
        now = asyncio.get_running_loop().time()
        shown = self.typing_until.get(event.user_id, 0.0) > now
        if not event.active:
            self.typing_until.pop(event.user_id, None)
            return None
        self.typing_until[event.user_id] = now + event.ttl
        if shown:
            return None
        name = event.user_name or f"user#{event.user_id}"
        return f"-- {name} is typing"


async def print_signals(client: Client, conversation: Conversation) -> None:
    """Print the status lines of typing and presence events until the end."""
    async for event in client.signals():
        line = conversation.describe(event)
        if line is not None:
            print(escape(line), file=sys.stderr, flush=True)
