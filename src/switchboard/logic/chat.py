"""The chat service: handles frames from gateways, stores, routes, delivers.

Order of events for a Send (docs/protocol.md, "Send"):
1. validate the frame and the recipient,
2. store the message in both inboxes (durable when the store returns),
3. acknowledge to the sending connection,
4. push the new inbox entries to every other online device of both users.
A crash between 2 and 4 loses no message: the sender's resend is
deduplicated and devices catch up by sync on reconnect.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from time import time_ns
from typing import Any

from google.protobuf.message import DecodeError

from switchboard.bus.base import (
    CONNECTION_CLOSED,
    Action,
    Bus,
    Endpoint,
    Inbound,
    Outbound,
)
from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import ClientMessageId, DeviceId, GroupId, Seq, UserId
from switchboard.logic.auth import AuthService
from switchboard.logic.changes import ChangeService
from switchboard.logic.content import validate_body
from switchboard.logic.conversations import ConversationService
from switchboard.logic.devices import DevicePolicy
from switchboard.logic.peers import PeerDirectory
from switchboard.logic.presence import PresenceService
from switchboard.logic.recall import RecallService
from switchboard.logic.receipts import ReceiptService
from switchboard.logic.routing import RoutingTable
from switchboard.logic.stats import Stats
from switchboard.logic.timeline import TimelineService, timeline_heads
from switchboard.logic.typing import TypingService
from switchboard.logic.wire import SharedMessage, to_live_message, to_wire_message
from switchboard.logs import RateLimitedLog
from switchboard.protocol import pb
from switchboard.protocol.frames import PROTOCOL_VERSION, FrameType, encode
from switchboard.ratelimit import KeyedLimiter
from switchboard.store.base import (
    GroupAppendResult,
    GroupNotFound,
    InboxEntry,
    InboxPage,
    InvalidMention,
    NotMember,
    Session,
    Store,
    StoredMessage,
)

__all__ = ["ChatService", "SendResult", "to_wire_message"]

SYNC_FRAME_OVERHEAD = 64
"""Bytes reserved in a Connected or SyncResponse frame besides its messages."""
MAX_IN_FLIGHT = 256
"""Sends of one connection being stored at once; further ones wait."""
MAX_CLIENT_ID = 2**63 - 1
"""Largest client message id: stores keep ids as signed 64-bit integers."""
MESSAGE_FIELD_OVERHEAD = 4
"""Tag and length prefix of one embedded Message, at most."""

logger = logging.getLogger("switchboard.logic")

Handler = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SendResult:
    """The stored message of a Send and its place in the sender's inbox."""

    message: StoredMessage
    sender_seq: Seq
    """The message's sequence in the sender's inbox; 0 for a large group."""
    duplicate: bool
    group_seq: Seq = Seq(0)
    """For a large group, the message's sequence in the group's timeline."""


def _sync_response(after_seq: int, page: InboxPage, max_bytes: int) -> pb.SyncResponse:
    """Build a SyncResponse whose encoding stays within ``max_bytes``.

    Entries that would overflow the frame are left for the next Sync, with
    ``has_more`` set. The first entry always fits, because the settings
    keep the largest message body well below the frame limit.
    """
    response = pb.SyncResponse(after_seq=after_seq, head_seq=page.head_seq)
    budget = max_bytes - SYNC_FRAME_OVERHEAD
    trimmed = False
    for entry in page.entries:
        message = to_wire_message(entry)
        size = message.ByteSize() + MESSAGE_FIELD_OVERHEAD
        if size > budget and len(response.messages) > 0:
            trimmed = True
            break
        budget -= size
        response.messages.append(message)
    response.has_more = page.has_more or trimmed
    return response


class ChatService:
    """Logic-layer handler for every frame a gateway publishes on the bus."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        routing: RoutingTable,
        auth: AuthService,
        stats: Stats | None = None,
        *,
        concurrent_connects: int = 0,
    ) -> None:
        self.stats = stats or Stats()
        self._connect_slots = (
            asyncio.Semaphore(concurrent_connects) if concurrent_connects else None
        )
        self._connecting: dict[tuple[UserId, DeviceId], tuple[asyncio.Lock, int]] = {}
        """Lock of each device whose Connect is being handled, and the number
        of Connects that hold or wait for it."""
        self._settings = settings
        self._store = store
        self._bus = bus
        self._routing = routing
        self._auth = auth
        self._known_users: set[UserId] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[Endpoint, asyncio.Semaphore] = {}
        self._device_sends: dict[tuple[UserId, DeviceId], set[asyncio.Task[None]]] = {}
        self._send_limiter: KeyedLimiter[UserId] = KeyedLimiter(
            settings.send_rate, settings.send_burst
        )
        self._rate_rejected: dict[Endpoint, list[int]] = {}
        """Client ids rejected by the rate limit and not stored yet, ascending."""
        self._rejections = RateLimitedLog(logger)
        # Typing and presence (logic/typing.py, logic/presence.py).
        peers = PeerDirectory(store)
        self._typing = TypingService(settings, store, bus, routing, peers)
        self._presence = PresenceService(settings, store, bus, routing, peers)
        self._handlers: dict[int, Handler] = {
            FrameType.CONNECT: self._on_connect,
            FrameType.SEND: self._on_send,
            FrameType.SYNC: self._on_sync,
            FrameType.CURSOR: self._on_cursor,
            FrameType.TYPING: self._typing.on_typing,
            FrameType.PRESENCE_SUBSCRIBE: self._presence.on_subscribe,
            CONNECTION_CLOSED: self._on_closed,
        }
        self.conversations = ConversationService(settings, store, bus)
        self._handlers[FrameType.CONVERSATIONS] = self.conversations.handle
        self.receipts = ReceiptService(store, self)
        self.recall = RecallService(settings, store, self)
        self.devices = DevicePolicy.from_settings(settings)
        changes = ChangeService(self, self.receipts, self.recall)
        self._handlers[FrameType.CHANGE] = changes.handle
        self.timelines = TimelineService(settings, store, bus, routing)
        self._handlers[FrameType.TIMELINE_SYNC] = self.timelines.on_sync

    def start(self) -> None:
        self._bus.subscribe_inbound(self.handle, self.settled)

    async def handle(self, item: Inbound) -> None:
        """Handle one frame; frames of one connection arrive in order.

        With ``concurrent_connects`` set, up to that many Connects run at
        once in tasks that :meth:`settled` waits for, so that the latency of
        one Connect does not hold up the frames queued behind it on a bus
        partition. Its connection's later frames cannot be among those,
        because the gateway keeps them until it has sent Connected.
        """
        slots = self._connect_slots
        if slots is None or item.frame_type != FrameType.CONNECT:
            await self._handle(item)
            return
        await slots.acquire()
        task = self._spawn(self._handle(item))
        task.add_done_callback(lambda _: slots.release())

    async def _handle(self, item: Inbound) -> None:
        handler = self._handlers.get(item.frame_type)
        if handler is None:
            logger.error(
                "no handler for frame type %d from %s", item.frame_type, item.endpoint
            )
            return
        try:
            await handler(item)
        except RequestError as exc:
            self._reject(item, exc, client_id=0)
        except DecodeError as exc:
            self._reject(item, RequestError(ErrorCode.PROTOCOL_ERROR, str(exc)), 0)

    @property
    def tracked_connections(self) -> int:
        """Connections with per-connection send state (in-flight slots or
        rate-limited client ids); it drops to 0 once all are closed."""
        return len(self._in_flight.keys() | self._rate_rejected.keys())

    async def wait_idle(self) -> None:
        """Wait until every accepted Send is stored and acknowledged."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def settled(self) -> None:
        """Wait for the work started by the frames handled so far.

        Unlike wait_idle, work that starts meanwhile is not waited for, so
        this returns under a steady load. A durable bus calls it before it
        acknowledges the frames it handed to handle().
        """
        pending = set(self._tasks)
        if pending:
            await asyncio.wait(pending)

    # Connect: authenticate and catch up in one round trip.

    async def _on_connect(self, item: Inbound) -> None:
        connect = pb.Connect.FromString(item.payload)
        if connect.version != PROTOCOL_VERSION:
            raise RequestError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {connect.version} is not supported;"
                f" this server speaks version {PROTOCOL_VERSION}",
            )
        session = await self._auth.authenticate(connect.token)
        # The token names its device, so a client may leave the field empty.
        if connect.device and session.device != connect.device:
            raise RequestError(
                ErrorCode.UNAUTHORIZED,
                f"the token was issued for device {session.device!r}, not"
                f" {connect.device[:64]!r}; log in from this device",
            )
        self._known_users.add(session.user_id)
        # Connects of one device run one at a time, so that a late one
        # cannot overwrite the route of a newer one (_reject_stale_connect).
        key = (session.user_id, session.device)
        lock, waiting = self._connecting.get(key, (asyncio.Lock(), 0))
        self._connecting[key] = (lock, waiting + 1)
        try:
            async with lock:
                await self._connect_device(item, connect, session)
        finally:
            lock, waiting = self._connecting[key]
            if waiting == 1:
                del self._connecting[key]
            else:
                self._connecting[key] = (lock, waiting - 1)

    async def _connect_device(
        self, item: Inbound, connect: pb.Connect, session: Session
    ) -> None:
        """Route the device's connection, send Connected and announce it."""
        user_id, device = session.user_id, session.device
        await self._reject_stale_connect(user_id, device, item.endpoint)

        # Route first, then read: a message stored after the read is pushed,
        # and the gateway queues pushes until it has sent Connected.
        replaced = await self._routing.add(user_id, device, item.endpoint)
        if replaced is not None:
            self._close(
                replaced,
                ErrorCode.SESSION_REPLACED,
                "a newer connection of this device took over",
            )
        await self._apply_device_policy(session.platform, user_id, device, item)
        await self._send_connected(item, connect, user_id, device)
        await self._presence.connected(user_id)

    async def _reject_stale_connect(
        self, user_id: UserId, device: DeviceId, endpoint: Endpoint
    ) -> None:
        """Raise SESSION_REPLACED if the device has a route to a connection
        that the same gateway opened after ``endpoint``.

        Such a Connect was sent before the device gave up on its connection
        and opened the newer one; the network delivered it late. Letting it
        take over would close the device's live connection with
        SESSION_REPLACED, after which a client stops reconnecting.
        """
        # NOTE: connection ids are comparable only within one gateway; across
        # gateways the later Connect still takes over.
        current = (await self._routing.lookup(user_id)).get(device)
        if (
            current is not None
            and current.gateway == endpoint.gateway
            and current.connection > endpoint.connection
        ):
            raise RequestError(
                ErrorCode.SESSION_REPLACED,
                "a newer connection of this device is open; this one is stale",
            )

    async def _apply_device_policy(
        self, platform: int, user_id: UserId, device: DeviceId, item: Inbound
    ) -> None:
        """Close the connections the new one pushes over its class's limit."""
        evictions = self.devices.admit(user_id, device, platform, item.endpoint)
        for eviction in evictions:
            await self._routing.remove(user_id, eviction.device, eviction.endpoint)
            self._close(eviction.endpoint, ErrorCode.SESSION_REPLACED, eviction.reason)
            logger.info(
                "signed out user=%d device=%s: device %s connected",
                user_id,
                eviction.device,
                device,
            )

    async def _send_connected(
        self, item: Inbound, connect: pb.Connect, user_id: UserId, device: DeviceId
    ) -> None:
        settings = self._settings
        limit = _page_limit(connect.sync_limit, settings)
        await self.wait_device_sends(user_id, device)
        # The page first: the device state read after it then covers every
        # message in the page, whatever commits in between.
        read = await self._store.read_connect_state(
            user_id, device, Seq(connect.last_seq), limit
        )
        page, state = read.page, read.device
        data = b""
        after = connect.last_seq
        if connect.last_seq > page.head_seq:
            data += encode(
                pb.Error(
                    code=ErrorCode.CURSOR_AHEAD,
                    reason=f"cursor {connect.last_seq} is above the inbox's highest"
                    f" sequence {page.head_seq}; continue from {page.head_seq}",
                )
            )
            after = page.head_seq
        heartbeat = _clamp_heartbeat(connect.heartbeat, settings)
        connected = pb.Connected(
            user_id=user_id,
            heartbeat=heartbeat,
            max_heartbeat=settings.max_heartbeat,
            head_seq=page.head_seq,
            sync=_sync_response(after, page, settings.max_frame_size),
            last_client_id=state.last_client_id,
            server_time=_now_ms(),
            timelines=timeline_heads(read.timelines),
        )
        data += encode(connected)
        self.stats.syncs += 1
        if connect.conversations:
            data += await self.conversations.list_frame(
                user_id, 0, connect.conversations
            )
        self._bus.publish_outbound(
            Outbound(
                item.endpoint,
                data,
                Action.ACCEPT,
                user_id=user_id,
                device=device,
                heartbeat=heartbeat,
            )
        )
        if state.cursor < connect.last_seq <= page.head_seq:
            # The device holds everything up to last_seq, even if the Cursor
            # frame that reported it was lost with its connection.
            self._spawn(self._store.set_cursor(user_id, device, Seq(connect.last_seq)))

    # Send: store, acknowledge, deliver.

    async def _on_send(self, item: Inbound) -> None:
        send = pb.Send.FromString(item.payload)
        try:
            await self._check_send(send)
            self._check_rate(item, send.client_id)
        except RequestError as exc:
            self._reject(item, exc, send.client_id)
            return
        # Waiting here for a free slot stops the gateway forwarding this
        # connection's frames, and then reading its socket: backpressure.
        slots = self._in_flight.get(item.endpoint)
        if slots is None:
            slots = self._in_flight[item.endpoint] = asyncio.Semaphore(MAX_IN_FLIGHT)
        await slots.acquire()
        # The task's first step enqueues the write; tasks start in creation
        # order, so the store applies one connection's Sends in frame order.
        task = self._spawn(self._store_and_deliver(item, send))
        task.add_done_callback(lambda _: slots.release())
        key = (item.user_id, item.device)
        pending = self._device_sends.setdefault(key, set())
        pending.add(task)
        task.add_done_callback(lambda done: self._forget_send(key, done))

    def _forget_send(
        self, key: tuple[UserId, DeviceId], task: asyncio.Task[None]
    ) -> None:
        pending = self._device_sends.get(key)
        if pending is not None:
            pending.discard(task)
            if not pending:
                del self._device_sends[key]

    async def wait_device_sends(self, user_id: UserId, device: DeviceId) -> None:
        """Wait until the device's Sends accepted so far are stored or failed.

        A Connect waits, so that last_client_id and the first sync page cover
        a Send still being stored for the device's previous connection. A Sync
        waits, so that it sees the Sends pipelined before it.
        """
        pending = self._device_sends.get((user_id, device))
        if pending:
            await asyncio.wait(set(pending))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in a task that wait_idle waits for."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _check_send(self, send: pb.Send) -> None:
        if not 0 < send.client_id <= MAX_CLIENT_ID:
            raise RequestError(
                ErrorCode.INVALID_MESSAGE,
                f"invalid client_id {send.client_id}: number messages from 1"
                f" up to {MAX_CLIENT_ID}",
            )
        if len(send.body) > self._settings.max_body_size:
            raise RequestError(
                ErrorCode.INVALID_MESSAGE,
                f"body of {len(send.body)} bytes exceeds the limit of"
                f" {self._settings.max_body_size} bytes",
            )
        validate_body(send.content_type, send.body)
        if send.group:
            _check_group_send(send)
        else:
            if send.mentions:
                raise RequestError(
                    ErrorCode.INVALID_MESSAGE, "mentions are only for group messages"
                )
            if send.to == 0:
                raise RequestError(
                    ErrorCode.INVALID_MESSAGE,
                    "the message names no recipient; set 'to' to a user id"
                    " or 'group' to a group id",
                )
            await self._check_recipient(UserId(send.to))

    def _check_rate(self, item: Inbound, client_id: int) -> None:
        """Apply the per-user send rate; raise RATE_LIMITED when it is exceeded.

        While a connection has a rejected Send outstanding, every Send with a
        higher client id is rejected too, until the lower one is sent again
        and stored. So rate limiting never reorders a connection's messages,
        whatever order the client retries in.
        """
        if not self._send_limiter.enabled:
            return
        rejected = self._rate_rejected.get(item.endpoint)
        if rejected and client_id > rejected[0]:
            wait = 1 / self._send_limiter.rate
        else:
            wait = self._send_limiter.take(item.user_id, time.monotonic())
            if wait == 0.0:
                if rejected and rejected[0] == client_id:
                    rejected.pop(0)
                return
        if rejected is None:
            rejected = self._rate_rejected[item.endpoint] = []
        index = bisect.bisect_left(rejected, client_id)
        if index == len(rejected) or rejected[index] != client_id:
            if len(rejected) >= MAX_IN_FLIGHT * 4:
                raise RequestError(
                    ErrorCode.PROTOCOL_ERROR,
                    "too many rate-limited messages were never sent again;"
                    " resend rejected messages in client id order",
                )
            rejected.insert(index, client_id)
        raise _rate_limited(self._settings.send_rate, wait)

    async def _check_recipient(self, user_id: UserId) -> None:
        if user_id in self._known_users:
            return
        if user_id == 0 or await self._store.get_user(user_id) is None:
            raise RequestError(
                ErrorCode.UNKNOWN_RECIPIENT, f"no user with id {user_id}"
            )
        self._known_users.add(user_id)

    async def _store_and_deliver(self, item: Inbound, send: pb.Send) -> None:
        try:
            result = await self.store_and_deliver(
                item.user_id, item.device, send, origin=item.endpoint
            )
        except RequestError as exc:
            self._reject(item, exc, send.client_id)
            return
        except Exception:
            logger.exception(
                "storing a message failed user=%d device=%s client_id=%d",
                item.user_id,
                item.device,
                send.client_id,
            )
            error = RequestError(
                ErrorCode.INTERNAL_ERROR, "the message was not stored; send it again"
            )
            self._reject(item, error, send.client_id)
            return
        message = result.message
        # No sent_at: the sender's clock estimate, from Connected.server_time,
        # is off by one network delay, and the 7 bytes are a tenth of a small
        # exchange. Sync pages carry the stored time.
        ack = pb.SendAck(
            client_id=send.client_id,
            seq=result.sender_seq,
            id=message.id,
            group_seq=result.group_seq,
        )
        self._bus.publish_outbound(Outbound(item.endpoint, encode(ack)))

    async def store_and_deliver(
        self,
        sender: UserId,
        device: DeviceId,
        send: pb.Send,
        origin: Endpoint | None = None,
    ) -> SendResult:
        """Store a validated Send and push it to every online device concerned.

        ``origin``, the connection the Send came from, gets no push: it gets
        the SendAck. A duplicate is not pushed again. Raises RequestError
        NOT_A_MEMBER, GROUP_NOT_FOUND or INVALID_MESSAGE (a mention of a
        non-member) for a group Send the store rejects.
        """
        if send.group:
            group_result = await self._append_group_message(sender, device, send)
            if not group_result.duplicate:
                self.stats.messages_sent += 1
                await self.deliver_group(group_result, origin)
            return SendResult(
                group_result.message,
                group_result.seqs.get(sender, Seq(0)),
                group_result.duplicate,
                group_result.timeline_seq,
            )

        result = await self._store.append_message(
            sender=sender,
            device=device,
            client_id=ClientMessageId(send.client_id),
            recipient=UserId(send.to),
            content_type=send.content_type,
            body=send.body,
            sent_at=_now_ms(),
        )
        message = result.message
        if not result.duplicate:
            self.stats.messages_sent += 1
            await self._deliver(
                InboxEntry(result.recipient_seq, message, result.recipient_unread),
                message.recipient,
                None,
            )
            if message.sender != message.recipient:
                await self._deliver(
                    InboxEntry(result.sender_seq, message, result.sender_unread),
                    message.sender,
                    origin,
                )
        return SendResult(message, result.sender_seq, result.duplicate)

    async def _append_group_message(
        self, sender: UserId, device: DeviceId, send: pb.Send
    ) -> GroupAppendResult:
        group_id = GroupId(send.group)
        try:
            return await self._store.append_group_message(
                sender=sender,
                device=device,
                client_id=ClientMessageId(send.client_id),
                group_id=group_id,
                content_type=send.content_type,
                body=send.body,
                sent_at=_now_ms(),
                mentions=[UserId(user_id) for user_id in send.mentions],
            )
        except GroupNotFound as exc:
            raise RequestError(
                ErrorCode.GROUP_NOT_FOUND, f"no group with id {group_id}"
            ) from exc
        except NotMember as exc:
            raise RequestError(
                ErrorCode.NOT_A_MEMBER,
                f"user {sender} is not a member of group {group_id}",
            ) from exc
        except InvalidMention as exc:
            raise RequestError(ErrorCode.INVALID_MESSAGE, str(exc)) from exc

    async def deliver_group(
        self, result: GroupAppendResult, origin: Endpoint | None
    ) -> None:
        """Push a stored group message to every online device of its members.

        A large group's timeline message is the same for all members, so its
        frame is encoded once (logic/timeline.py). In a small group each
        member's entry has its own seq and unread count: the message's
        shared fields are serialized once and each member's frame appends
        its own two fields.
        """
        if result.timeline_seq:
            delivered = await self.timelines.deliver(result, origin)
            self.stats.messages_delivered += delivered
            return
        shared = SharedMessage(result.message)
        for user_id, seq in result.seqs.items():
            data = shared.frame(seq, result.unread.get(user_id, 0))
            self.stats.messages_delivered += await self.push(user_id, data, origin)

    async def send_from_api(
        self, sender: UserId, device: DeviceId, send: pb.Send
    ) -> SendResult:
        """Validate, rate-limit, store and deliver a Send made over HTTP.

        Raises RequestError like the socket path: INVALID_MESSAGE,
        UNKNOWN_RECIPIENT or RATE_LIMITED.
        """
        await self._check_send(send)
        self.limit_rate(sender)
        return await self.store_and_deliver(sender, device, send)

    def limit_rate(self, user_id: UserId) -> None:
        """Count one message against the user's send rate.

        Raises RequestError RATE_LIMITED, with ``retry_after_ms``, when the
        user is over the rate.
        """
        wait = self._send_limiter.take(user_id, time.monotonic())
        if wait > 0:
            raise _rate_limited(self._settings.send_rate, wait)

    async def _deliver(
        self, entry: InboxEntry, user_id: UserId, skip: Endpoint | None
    ) -> None:
        data = encode(to_live_message(entry, user_id))
        self.stats.messages_delivered += await self.push(user_id, data, skip)

    async def push(
        self, user_id: UserId, data: bytes, skip: Endpoint | None = None
    ) -> int:
        """Send ``data`` to every online device of the user but ``skip``.

        Returns the number of connections it was written to.
        """
        routes = await self._routing.lookup(user_id)
        written = 0
        for endpoint in routes.values():
            if endpoint != skip:
                written += 1
                self._bus.publish_outbound(Outbound(endpoint, data))
        return written

    # Sync and cursor.

    async def _on_sync(self, item: Inbound) -> None:
        request = pb.SyncRequest.FromString(item.payload)
        limit = _page_limit(request.limit, self._settings)
        await self.wait_device_sends(item.user_id, item.device)
        page = await self._store.read_inbox(item.user_id, Seq(request.after_seq), limit)
        response = _sync_response(
            request.after_seq, page, self._settings.max_frame_size
        )
        self.stats.syncs += 1
        self._bus.publish_outbound(Outbound(item.endpoint, encode(response)))

    async def _on_cursor(self, item: Inbound) -> None:
        cursor = pb.Cursor.FromString(item.payload)
        if cursor.seq > MAX_SEQ:
            raise RequestError(
                ErrorCode.INVALID_ARGUMENT,
                f"cursor {cursor.seq} is out of range; send the highest sequence"
                " the device received",
            )
        await self._store.set_cursor(item.user_id, item.device, Seq(cursor.seq))

    async def _on_closed(self, item: Inbound) -> None:
        self.devices.forget(item.user_id, item.device, item.endpoint)
        self._in_flight.pop(item.endpoint, None)
        self._rate_rejected.pop(item.endpoint, None)
        await self._routing.remove(item.user_id, item.device, item.endpoint)
        await self._presence.closed(item.endpoint, item.user_id)

    # Closing connections from the logic side.

    async def kick(
        self, user_id: UserId, device: DeviceId, code: ErrorCode, reason: str
    ) -> bool:
        """Close the device's live connection, if any; return whether one was."""
        routes = await self._routing.lookup(user_id)
        endpoint = routes.get(device)
        if endpoint is None:
            return False
        await self._routing.remove(user_id, device, endpoint)
        self._close(endpoint, code, reason)
        return True

    def _close(self, endpoint: Endpoint, code: ErrorCode, reason: str) -> None:
        error = pb.Error(code=code, reason=reason, fatal=True)
        self._bus.publish_outbound(
            Outbound(endpoint, encode(error), Action.CLOSE, reason=code.name.lower())
        )

    def reply(self, item: Inbound, data: bytes) -> None:
        """Send ``data`` to the connection ``item`` came from."""
        self._bus.publish_outbound(Outbound(item.endpoint, data))

    def reject(self, item: Inbound, exc: RequestError, *, request_id: int) -> None:
        """Reject the ChangeRequest ``request_id`` of ``item`` with an Error frame."""
        self._reject(item, exc, 0, request_id)

    def _reject(
        self, item: Inbound, exc: RequestError, client_id: int, request_id: int = 0
    ) -> None:
        fatal = (
            item.frame_type == FrameType.CONNECT or exc.code == ErrorCode.PROTOCOL_ERROR
        )
        self._rejections.warning(
            f"{exc.code.name}:{item.peer.rpartition(':')[0]}",
            "rejected %s from %s user=%d device=%s: %s",
            _frame_name(item.frame_type),
            item.peer,
            item.user_id,
            item.device,
            exc.reason,
        )
        error = pb.Error(
            code=exc.code,
            reason=exc.reason,
            client_id=client_id,
            fatal=fatal,
            retry_after=exc.retry_after_ms,
            request_id=request_id,
        )
        action = Action.CLOSE if fatal else Action.NONE
        self.stats.count_error(exc.code.name.lower())
        self._bus.publish_outbound(
            Outbound(item.endpoint, encode(error), action, reason=exc.code.name.lower())
        )


MAX_SEQ = 2**63 - 1
"""Highest sequence a store can hold (a signed 64-bit integer)."""


def _check_group_send(send: pb.Send) -> None:
    if send.to:
        raise RequestError(
            ErrorCode.INVALID_MESSAGE,
            f"a group message has to 0, not {send.to}; set either to or group",
        )


def _frame_name(frame_type: int) -> str:
    try:
        return FrameType(frame_type).name
    except ValueError:
        return str(frame_type)


def _page_limit(requested: int, settings: Settings) -> int:
    if requested == 0:
        return settings.sync_page
    return min(requested, settings.max_sync_page)


def _clamp_heartbeat(requested: int, settings: Settings) -> int:
    if requested == 0:
        return settings.heartbeat
    return max(settings.min_heartbeat, min(requested, settings.max_heartbeat))


def _now_ms() -> int:
    return time_ns() // 1_000_000


def _rate_limited(rate: float, wait: float) -> RequestError:
    """Return the RATE_LIMITED error for a sender over ``rate`` messages/s
    that may send again in ``wait`` seconds."""
    retry_after_ms = max(1, math.ceil(wait * 1000))
    return RequestError(
        ErrorCode.RATE_LIMITED,
        f"more than {rate:g} messages per second; send again in {retry_after_ms} ms",
        retry_after_ms=retry_after_ms,
    )
