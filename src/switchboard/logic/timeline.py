"""Large groups: one timeline per group, read by its members (fan-out on read).

A group of more than ``large_group_threshold`` members is in ``"read"``
mode: each message is stored once, at the next sequence of the group's
timeline, instead of once per member inbox. Its live push is the same for
every member, so the ``Message`` frame is encoded once and the same bytes
object is written to every online member connection. Devices catch up per
group with ``TimelineSync`` frames, starting from the heads listed in
``Connected.timelines`` (docs/protocol.md, "Large groups").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from switchboard.bus.base import Bus, Endpoint, Inbound, Outbound
from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, Seq, UserId
from switchboard.logic.routing import RoutingTable
from switchboard.logic.wire import to_wire_message
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.store.base import (
    GroupAppendResult,
    GroupNotFound,
    InboxEntry,
    NotMember,
    Store,
    TimelineEntry,
    TimelinePage,
    TimelineState,
)

__all__ = ["TimelineService", "timeline_heads", "timeline_message"]

PAGE_FRAME_OVERHEAD: Final = 64
"""Bytes reserved in a TimelinePage frame besides its messages."""
MESSAGE_FIELD_OVERHEAD: Final = 4
"""Tag and length prefix of one embedded Message, at most."""
LOOKUP_BATCH: Final = 1000
"""Members whose routes are looked up at once, one Redis round trip in the
clustered mode."""

logger = logging.getLogger("switchboard.logic")


def timeline_message(entry: TimelineEntry) -> pb.Message:
    """Return the wire form of a timeline entry: ``group_seq`` set, ``seq``
    and ``unread`` 0, so it is the same for every member."""
    message = to_wire_message(InboxEntry(Seq(0), entry.message, deleted=entry.deleted))
    message.group_seq = entry.seq
    return message


class TimelineService:
    """Pushes timeline messages and replies to ``TimelineSync`` frames."""

    def __init__(
        self, settings: Settings, store: Store, bus: Bus, routing: RoutingTable
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._routing = routing
        self.encoded = 0
        """Timeline Message frames encoded so far, one per pushed message."""

    async def deliver(self, result: GroupAppendResult, origin: Endpoint | None) -> int:
        """Push a timeline message to every online device of the members it
        was stored for, but ``origin``; return the number of connections.

        The frame is encoded once and the same bytes object goes to every
        connection.
        """
        assert result.message.group_id is not None
        entry = TimelineEntry(result.timeline_seq, result.message)
        data = encode(timeline_message(entry))
        self.encoded += 1
        return await self.push_to(result.members, data, origin)

    async def push_to(
        self, users: Iterable[UserId], data: bytes, skip: Endpoint | None
    ) -> int:
        """Write ``data`` to every online device of ``users`` but ``skip``."""
        written = 0
        members = list(users)
        for start in range(0, len(members), LOOKUP_BATCH):
            batch = members[start : start + LOOKUP_BATCH]
            found = await self._routing.lookup_many(batch)
            for routes in found.values():
                for endpoint in routes.values():
                    if endpoint != skip:
                        written += 1
                        self._bus.publish_outbound(Outbound(endpoint, data))
        return written

    async def on_sync(self, item: Inbound) -> None:
        """Reply to a TimelineSync frame with a TimelinePage."""
        request = pb.TimelineSync.FromString(item.payload)
        settings = self._settings
        limit = request.limit or settings.sync_page
        limit = min(limit, settings.max_sync_page)
        group_id = GroupId(request.group)
        try:
            page = await self._store.read_timeline(
                group_id, item.user_id, Seq(request.after_seq), limit
            )
        except GroupNotFound as exc:
            raise RequestError(
                ErrorCode.GROUP_NOT_FOUND, f"no group with id {group_id}"
            ) from exc
        except NotMember as exc:
            raise RequestError(
                ErrorCode.NOT_A_MEMBER,
                f"user {item.user_id} may not read the timeline of group"
                f" {group_id}: not a large group, or never a member",
            ) from exc
        response = _page_frame(request, page, settings.max_frame_size)
        self._bus.publish_outbound(Outbound(item.endpoint, encode(response)))


def timeline_heads(states: Iterable[TimelineState]) -> list[pb.TimelineHead]:
    """Return the head and start of each timeline, for Connected."""
    return [_head(state) for state in states]


def _head(state: TimelineState) -> pb.TimelineHead:
    return pb.TimelineHead(
        group=state.group.id,
        head_seq=state.head_seq,
        start_seq=state.start_seq,
        left=state.left,
    )


def _page_frame(
    request: pb.TimelineSync, page: TimelinePage, max_bytes: int
) -> pb.TimelinePage:
    """Build a TimelinePage whose encoding stays within ``max_bytes``; entries
    that do not fit are left for the next request, with ``has_more`` set."""
    response = pb.TimelinePage(
        group=request.group,
        after_seq=request.after_seq,
        head_seq=page.head_seq,
        start_seq=page.start_seq,
    )
    budget = max_bytes - PAGE_FRAME_OVERHEAD
    trimmed = False
    for entry in page.entries:
        message = timeline_message(entry)
        size = message.ByteSize() + MESSAGE_FIELD_OVERHEAD
        if size > budget and len(response.messages) > 0:
            trimmed = True
            break
        budget -= size
        response.messages.append(message)
    response.has_more = page.has_more or trimmed
    return response
