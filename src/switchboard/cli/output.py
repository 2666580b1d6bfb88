"""Output of the CLI: one line of text, or one JSON object per line, for each
message, event, conversation or change.

Text output escapes control characters (see terminal.py); JSON output keeps
every string exact.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from switchboard.cli.terminal import escape
from switchboard.client import (
    Changed,
    Conversation,
    ConversationRead,
    Event,
    Group,
    GroupNotice,
    Media,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadReceipt,
    Sent,
)

__all__ = [
    "changed_json",
    "conversation_json",
    "describe_media",
    "event_json",
    "format_conversation",
    "format_event",
    "format_message",
    "format_notice",
    "format_size",
    "group_json",
    "media_json",
    "message_json",
    "print_json",
    "sent_json",
]


def _name(name: str | None, user_id: int) -> str:
    return name if name is not None else f"user#{user_id}"


def message_json(message: Message) -> dict[str, Any]:
    """Return a message as a JSON object; ``sent_at`` is in ms since the epoch.

    ``seq`` is null when the server did not report the inbox sequence.
    """
    item: dict[str, Any] = {
        "id": message.id,
        "seq": message.seq or None,
        "from": _name(message.sender_name, message.sender_id),
        "to": _name(message.recipient_name, message.recipient_id),
        "from_id": message.sender_id,
        "to_id": message.recipient_id,
        "outgoing": message.outgoing,
        "content_type": message.content_type,
        "text": message.text,
        "sent_at": message.sent_at,
    }
    if message.text is None:
        item["body_b64"] = base64.b64encode(message.body).decode()
    media = message.media
    if media is not None:
        item["media"] = media_json(media)
    if message.group_id:
        item.update(
            to=None,
            to_id=None,
            group=message.group_id,
            group_name=message.group_name,
            mentions=list(message.mentions),
        )
    if message.group_seq:
        item["group_seq"] = message.group_seq
    notice = message.notice
    if notice is not None:
        item["notice"] = {
            **dataclasses.asdict(notice),
            "user_ids": list(notice.user_ids),
        }
    return item


def group_json(group: Group) -> dict[str, Any]:
    """Return a group, and its members if listed, as a JSON object."""
    item = dataclasses.asdict(group)
    item["members"] = [dataclasses.asdict(member) for member in group.members]
    if not group.members:
        del item["members"]
    return item


def media_json(media: Media) -> dict[str, Any]:
    """Return the reference to a file as a JSON object, without URLs."""
    return {
        "id": media.id,
        "content_type": media.content_type,
        "size": media.size,
        "name": media.name,
        "width": media.width,
        "height": media.height,
    }


def describe_media(media: Media) -> str:
    """Return ``[file NAME TYPE SIZE]``, for example ``[file a.png image/png 12 KB]``.

    A file without a name shows the first 12 digits of its id.
    """
    name = media.name if media.name is not None else media.id[:12]
    return escape(f"[file {name} {media.content_type} {format_size(media.size)}]")


def format_size(size: int) -> str:
    """Return a size in bytes as ``N B``, ``N KB``, ``N.N MB`` or ``N.N GB``,
    where KB is 1024 bytes."""
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.0f} KB"
    if size < 1024**3:
        return f"{size / 1024**2:.1f} MB"
    return f"{size / 1024**3:.1f} GB"


def sent_json(sent: Sent, to: str) -> dict[str, Any]:
    """Return a receipt as a JSON object; ``to`` is the user or group name."""
    item: dict[str, Any] = {
        "id": sent.id,
        "seq": sent.seq,
        "client_id": sent.client_id,
        "to": to,
        "to_id": sent.recipient_id,
        "sent_at": sent.sent_at,
    }
    if sent.group_id:
        item.update(to=None, to_id=None, group=sent.group_id, group_name=to)
    return item


def print_json(item: dict[str, Any]) -> None:
    print(json.dumps(item, ensure_ascii=False), flush=True)


NameOf = Callable[[int], str]
"""Returns a user's display name for an id."""


def _stamp(milliseconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(milliseconds / 1000))


def event_json(event: Event) -> dict[str, Any]:
    """Return an event as a JSON object with an ``event`` member naming its
    kind; a message gets ``"event": "message"``."""
    if isinstance(event, Message):
        return {"event": "message", **message_json(event)}
    if isinstance(event, ReadReceipt):
        return {
            "event": "receipt",
            "reader_id": event.reader_id,
            "group_id": event.group_id,
            "message_id": event.message_id,
            "read_at": event.read_at,
        }
    item: dict[str, Any] = {
        "event": _EVENT_NAMES[type(event)],
        "seq": event.seq,
        "peer_id": event.peer_id,
        "group_id": event.group_id,
    }
    if isinstance(event, ConversationRead):
        item.update(read_id=event.read_id, unread=event.unread, at=event.read_at)
    elif isinstance(event, MessageRecalled):
        item.update(message_id=event.message_id, by_id=event.sender_id)
        item["at"] = event.recalled_at
    elif isinstance(event, MessageEdited):
        item.update(message_id=event.message_id, by_id=event.sender_id)
        item.update(text=event.text, at=event.edited_at)
    else:
        item.update(message_id=event.message_id, at=event.deleted_at)
    return item


_EVENT_NAMES: dict[type, str] = {
    ConversationRead: "read",
    MessageRecalled: "recalled",
    MessageEdited: "edited",
    MessageDeleted: "deleted",
}


def format_event(event: Event, name_of: NameOf) -> str:
    """Return one line of text for an event, escaped for a terminal; a
    message as format_message."""
    if isinstance(event, Message):
        return format_message(event)
    return escape(_event_line(event, name_of))


def _event_line(event: Event, name_of: NameOf) -> str:
    if isinstance(event, ReadReceipt):
        where = f" in group {event.group_id}" if event.group_id else ""
        reader = name_of(event.reader_id)
        return (
            f"{_stamp(event.read_at)} {reader} read up to message"
            f" {event.message_id}{where}"
        )
    where = f"group {event.group_id}" if event.group_id else name_of(event.peer_id)
    if isinstance(event, ConversationRead):
        return (
            f"{_stamp(event.read_at)} read {where} up to message {event.read_id}"
            f" ({event.unread} unread)"
        )
    if isinstance(event, MessageRecalled):
        by = name_of(event.sender_id)
        return f"{_stamp(event.recalled_at)} {by} recalled message {event.message_id}"
    if isinstance(event, MessageEdited):
        by = name_of(event.sender_id)
        text = event.text if event.text is not None else f"<{len(event.body)} bytes>"
        return (
            f"{_stamp(event.edited_at)} {by} edited message {event.message_id}: {text}"
        )
    assert isinstance(event, MessageDeleted), event
    return (
        f"{_stamp(event.deleted_at)} deleted message {event.message_id} of {where}"
        " for this account"
    )


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """Return a conversation as a JSON object; ``last`` as in message_json."""
    last = conversation.last
    return {
        "peer_id": conversation.peer_id,
        "group_id": conversation.group_id,
        "name": conversation.name,
        "unread": conversation.unread,
        "read_id": conversation.read_id,
        "peer_read_id": conversation.peer_read_id,
        "last": None if last is None else message_json(last),
        "truncated": conversation.truncated,
    }


def format_conversation(conversation: Conversation) -> str:
    """Return ``NAME (N unread)  TIME FROM: PREVIEW`` for the conversation list."""
    name = conversation.name or f"user#{conversation.peer_id}"
    if conversation.group_id:
        name = f"{name} (group {conversation.group_id})"
    line = f"{name}  ({conversation.unread} unread)"
    last = conversation.last
    if last is None:
        return line
    if last.recalled:
        preview = "[recalled]"
    elif last.media is not None:
        preview = describe_media(last.media)
    elif last.text is not None:
        preview = last.text.replace("\n", " ")
    else:
        preview = f"<{len(last.body)} bytes of content type {last.content_type}>"
    if conversation.truncated:
        preview += "..."
    sender = "you" if last.outgoing else _name(last.sender_name, last.sender_id)
    return f"{line}  {_stamp(last.sent_at)} {sender}: {preview}"


def changed_json(message_id: int, changed: Changed) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "changed": changed.changed,
        "seq": changed.seq,
        "id": changed.id,
        "changed_at": changed.changed_at,
        "unread": changed.unread,
        "read_id": changed.read_id,
    }


def format_message(
    message: Message,
    *,
    peer: str | None = None,
    group: int | None = None,
    names: Mapping[int, str] | None = None,
) -> str:
    """Return ``TIME FROM -> TO: TEXT`` in local time, escaped for a terminal.

    With ``peer``, messages of the conversation with ``peer`` read
    ``TIME FROM: TEXT``, and others are marked with both names in brackets.
    A group message reads ``TIME FROM -> [GROUP]: TEXT``, and a group notice
    ``TIME [GROUP] SENTENCE``, with user names from ``names``. With ``group``,
    that group's messages read ``TIME FROM: TEXT`` and its notices
    ``TIME SENTENCE``.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message.sent_at / 1000))
    sender = _name(message.sender_name, message.sender_id)
    recipient = _name(message.recipient_name, message.recipient_id)
    text = message.text
    media = message.media
    notice = message.notice
    if message.recalled:
        text = "[recalled]"
    elif media is not None:
        text = describe_media(media)
    elif text is None:
        text = f"<{len(message.body)} bytes of content type {message.content_type}>"
    if message.group_id and message.group_id == group:
        if notice is not None:
            line = f"{stamp} {format_notice(notice, names or {})}"
        else:
            line = f"{stamp} {sender}: {text}"
    elif message.group_id:
        label = message.group_name or f"group#{message.group_id}"
        if notice is not None:
            line = f"{stamp} [{label}] {format_notice(notice, names or {})}"
        else:
            line = f"{stamp} {sender} -> [{label}]: {text}"
    elif peer is not None and message.peer_name == peer:
        line = f"{stamp} {sender}: {text}"
    elif peer is not None:
        line = f"{stamp} [{sender} -> {recipient}] {text}"
    else:
        line = f"{stamp} {sender} -> {recipient}: {text}"
    return escape(line)


def format_notice(notice: GroupNotice, names: Mapping[int, str]) -> str:
    """Return a sentence such as ``alice added bob, carol`` for a group change.

    Users missing from ``names`` are shown as ``user#ID``.
    """
    actor = names.get(notice.actor_id, f"user#{notice.actor_id}")
    others = [u for u in notice.user_ids if u != notice.actor_id]
    users = ", ".join(names.get(u, f"user#{u}") for u in others or notice.user_ids)
    role = notice.role or "member"
    match notice.event:
        case "group_created" if others:
            return f"{actor} created the group {notice.name!r} with {users}"
        case "group_created":
            return f"{actor} created the group {notice.name!r}"
        case "member_added" if role != "member":
            return f"{actor} added {users} as {role}"
        case "member_added":
            return f"{actor} added {users}"
        case "member_removed":
            return f"{actor} removed {users}"
        case "member_left":
            return f"{actor} left the group"
        case "role_changed":
            return f"{actor} made {users} {role}"
        case "group_renamed":
            return f"{actor} renamed the group to {notice.name!r}"
    return f"{actor}: {notice.event}"
