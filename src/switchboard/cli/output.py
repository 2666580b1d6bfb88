"""Message output of the CLI: one line of text, or one JSON object per line.

Text output escapes control characters (see terminal.py); JSON output keeps
every string exact.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from switchboard.cli.terminal import escape
from switchboard.client import Media, Message, Sent

__all__ = [
    "describe_media",
    "format_message",
    "format_size",
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
    return {
        "id": sent.id,
        "seq": sent.seq,
        "client_id": sent.client_id,
        "to": to,
        "to_id": sent.recipient_id,
        "sent_at": sent.sent_at,
    }


def print_json(item: dict[str, Any]) -> None:
    print(json.dumps(item, ensure_ascii=False), flush=True)


def format_message(message: Message, *, peer: str | None = None) -> str:
    """Return ``TIME FROM -> TO: TEXT`` in local time, escaped for a terminal.

    With ``peer``, messages of the conversation with ``peer`` read
    ``TIME FROM: TEXT``, and others are marked with both names in brackets.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message.sent_at / 1000))
    sender = _name(message.sender_name, message.sender_id)
    recipient = _name(message.recipient_name, message.recipient_id)
    text = message.text
    media = message.media
    if media is not None:
        text = describe_media(media)
    elif text is None:
        text = f"<{len(message.body)} bytes of content type {message.content_type}>"
    if peer is not None and message.peer_name == peer:
        line = f"{stamp} {sender}: {text}"
    elif peer is not None:
        line = f"{stamp} [{sender} -> {recipient}] {text}"
    else:
        line = f"{stamp} {sender} -> {recipient}: {text}"
    return escape(line)
