"""Typing indicators: forwarded to the peer's online devices, never stored.

A client sends ``Typing`` with ``to`` (a one-to-one peer) or ``group`` while
its user types, and again with ``active`` false when the user stops. The
server forwards it to every online device of the peer, or of every other
member of the group, with the sender and a time to live in seconds. Offline
devices get nothing, and nothing is stored (docs/protocol.md, "Typing").
"""

from __future__ import annotations

import logging
import time

from switchboard.bus.base import Bus, Inbound, Outbound
from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, UserId
from switchboard.logic.peers import PeerDirectory
from switchboard.logic.routing import RoutingTable
from switchboard.logs import RateLimitedLog
from switchboard.protocol import pb
from switchboard.protocol.frames import encode
from switchboard.ratelimit import KeyedLimiter
from switchboard.store.base import Store

__all__ = ["TypingService"]

logger = logging.getLogger("switchboard.logic")


class TypingService:
    """Handles Typing frames from clients."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        routing: RoutingTable,
        peers: PeerDirectory,
    ) -> None:
        self._settings = settings
        self._store = store
        self._bus = bus
        self._routing = routing
        self._peers = peers
        self._limiter: KeyedLimiter[UserId] = KeyedLimiter(
            settings.typing_rate, settings.typing_burst
        )
        self._dropped = RateLimitedLog(logger)

    async def on_typing(self, item: Inbound) -> None:
        """Forward a Typing frame; raise RequestError for a target not allowed.

        Frames above the user's typing rate are dropped without a reply:
        the next refresh brings the indicator back.
        """
        typing = pb.Typing.FromString(item.payload)
        if (typing.to == 0) == (typing.group == 0):
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                "a Typing frame names either a user (to) or a group, not both"
                " or neither",
            )
        if self._limiter.take(item.user_id, time.monotonic()) > 0:
            self._dropped.warning(
                f"typing:{item.user_id}",
                "dropped Typing frames above the rate user=%d",
                item.user_id,
            )
            return

        if typing.group:
            recipients = await self._group_audience(item.user_id, GroupId(typing.group))
        else:
            recipients = [await self._peer(item.user_id, UserId(typing.to))]
        forwarded = pb.Typing(
            sender=item.user_id,
            group=typing.group,
            active=typing.active,
            ttl=self._settings.typing_ttl if typing.active else 0,
        )
        await self._forward(encode(forwarded), recipients)

    async def _peer(self, sender: UserId, to: UserId) -> UserId:
        if not await self._peers.is_peer(sender, to):
            raise RequestError(
                ErrorCode.FORBIDDEN,
                f"user {to} is not a conversation peer of user {sender}; typing"
                " goes to users who wrote to each other or share a group",
            )
        return to

    async def _group_audience(self, sender: UserId, group_id: GroupId) -> list[UserId]:
        # NOTE: one membership read per frame; a member cache would save it
        # once typing in large groups is common.
        members = [
            member.user_id for member in await self._store.list_members(group_id)
        ]
        if not members:
            raise RequestError(
                ErrorCode.GROUP_NOT_FOUND, f"no group with id {group_id}"
            )
        if sender not in members:
            raise RequestError(
                ErrorCode.NOT_A_MEMBER,
                f"user {sender} is not a member of group {group_id}",
            )
        return [user for user in members if user != sender]

    async def _forward(self, data: bytes, recipients: list[UserId]) -> None:
        # One batched lookup: a large group has thousands of members.
        found = await self._routing.lookup_many(recipients)
        for routes in found.values():
            for endpoint in routes.values():
                self._bus.publish_outbound(Outbound(endpoint, data))
