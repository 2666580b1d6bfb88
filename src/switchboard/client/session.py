"""The reconnecting socket session behind :class:`~switchboard.client.Client`.

One task runs the connection loop: discover gateways, open a transport, send
``Connect`` with the device's contiguous sequence (the server returns
everything after it in the same round trip), pipeline every unacknowledged
``Send`` after it, then read frames until the connection ends. Lost
connections are retried with exponential backoff and full jitter, except
after errors that reconnecting cannot fix (bad or revoked token, session taken
over by another connection of the device, unsupported protocol version).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.client.backoff import Backoff
from switchboard.client.conversations import ConversationBook
from switchboard.client.errors import (
    SESSION_ENDING_CODES,
    ApiError,
    ChangeRejected,
    ClientClosed,
    SendRejected,
    ServerUnreachable,
    SessionEnded,
)
from switchboard.client.events import PresenceChanged, Signal, TypingChanged
from switchboard.client.heartbeat import HeartbeatPolicy
from switchboard.client.http import ApiClient
from switchboard.client.inbox import Inbox
from switchboard.client.limits import (
    SendLimits,
    frame_size,
    pack_frames,
    reported_frame_limit,
)
from switchboard.client.models import Gateway, InboxItem, Message, ReadReceipt, Sent
from switchboard.client.outbox import Outbox, PendingSend
from switchboard.client.state import ClientState
from switchboard.client.timelines import Timelines
from switchboard.client.transport import MAX_RECEIVE_SIZE, Transport, TransportFactory
from switchboard.client.wire import conversation_page, inbox_item
from switchboard.errors import ConnectionClosedError, ErrorCode, ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.frames import PROTOCOL_VERSION
from switchboard.protocol.framing import HEARTBEAT

__all__ = ["Session", "SessionOptions"]

logger = logging.getLogger("switchboard.client")

RETRYABLE_SEND_CODES = frozenset(
    {ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR, ErrorCode.SHUTTING_DOWN}
)
"""Error codes after which the same Send is written again after a delay."""

MIN_SEND_RETRY_DELAY = 1.0
"""Seconds before resending after a retryable error without ``retry_after``."""

RETRY_LOG_INTERVAL = 10.0
"""Seconds between two warnings about retried requests; retries in between
are counted into the next warning."""


@dataclass(slots=True)
class SessionOptions:
    """Timeouts and limits of the socket session. Times are in seconds."""

    connect_timeout: float = 10.0
    """Time to open a transport, and again to receive ``Connected``."""
    echo_timeout: float = 10.0
    """Time to wait for any data after a heartbeat before the connection is
    presumed dead."""
    close_timeout: float = 2.0
    """Time a graceful close may take before the connection is dropped."""
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_frame_size: int = MAX_RECEIVE_SIZE
    """Maximum size of a frame from the server, in bytes."""
    conversations_on_connect: int = 50
    """Conversations the server sends after each ``Connected``, to bring the
    conversation list up to date; 0 for none. The server caps it at 200."""


class _Lost(Exception):
    """The current connection ended; the session reconnects."""

    def __init__(self, reason: str, *, idle: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.idle = idle


@dataclass(slots=True)
class _PendingChange:
    """A ChangeRequest waiting for its ChangeAck."""

    request: pb.ChangeRequest
    future: asyncio.Future[pb.ChangeAck]
    written_on: int = 0
    """Connection number that last carried the request; 0 for none."""


class _Link:
    """State of one transport connection."""

    __slots__ = (
        "awaiting_echo",
        "cursor_ahead",
        "echo",
        "gateway",
        "last_received",
        "last_sent",
        "number",
        "opened",
        "protocol",
        "server_clock",
        "sync_in_flight",
        "timeline_syncs",
        "transport",
        "write_lock",
    )

    def __init__(
        self, number: int, gateway: Gateway, transport: Transport, max_frame: int
    ) -> None:
        now = asyncio.get_running_loop().time()
        self.number = number
        self.gateway = gateway
        self.transport = transport
        self.protocol = Connection(Role.CLIENT, max_frame)
        self.opened = False
        self.last_sent = now
        self.last_received = now
        self.echo = asyncio.Event()
        self.awaiting_echo = False
        self.sync_in_flight = False
        self.timeline_syncs: set[int] = set()
        """Groups with a TimelineSync in flight on this connection."""
        self.cursor_ahead = False
        self.write_lock = asyncio.Lock()
        # Connected.server_time, in ms, and the loop time it arrived at.
        self.server_clock = (0, now)

    def server_now(self) -> int:
        """Return the estimated server time in ms since the Unix epoch."""
        server_time, received_at = self.server_clock
        elapsed = asyncio.get_running_loop().time() - received_at
        return server_time + int(elapsed * 1000)


class Session:
    """Keeps one authenticated connection open, and reopens it when it drops.

    The session shares ``state``, ``inbox``, ``book`` and ``heartbeat`` with
    its client: it adds received entries to ``inbox`` and applies them and
    conversation lists to ``book``, raises ``state.last_client_id`` to the
    server's value and calls ``save_state`` when it changed ``state``. It
    calls ``on_receipt`` for each read receipt, and ``on_change`` whenever the
    inbox grew, a receipt arrived or the session ended. Typing and presence
    signals go to ``on_signal``.
    """

    def __init__(
        self,
        *,
        api: ApiClient,
        state: ClientState,
        save_state: Callable[[], Awaitable[None]],
        inbox: Inbox[InboxItem],
        timelines: Timelines[InboxItem],
        book: ConversationBook,
        heartbeat: HeartbeatPolicy,
        transport: str,
        platform: pb.Platform,
        fallback_gateways: Sequence[Gateway],
        open_transport: TransportFactory,
        options: SessionOptions,
        on_change: Callable[[], None],
        on_receipt: Callable[[ReadReceipt], None],
        on_signal: Callable[[Signal], None] = lambda event: None,
    ) -> None:
        self._api = api
        self._state = state
        self._save_state = save_state
        self._inbox = inbox
        self._timelines = timelines
        self._book = book
        self._heartbeat = heartbeat
        self._transport_kind = transport
        self._platform = platform
        self._fallback_gateways = [
            g for g in fallback_gateways if g.transport == transport
        ]
        self._open_transport = open_transport
        self._options = options
        self._on_change = on_change
        self._on_receipt = on_receipt
        self._on_signal = on_signal
        self._watched: list[int] = []
        """Users whose presence every connection watches."""

        self._outbox = Outbox()
        self._changes: dict[int, _PendingChange] = {}
        self._request_ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[Sent]] = {}
        self._retries_unlogged = 0
        self._retry_logged_at = -RETRY_LOG_INTERVAL
        self._backoff = Backoff(options.backoff_base, options.backoff_cap)
        self._link: _Link | None = None
        self._links = 0
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake = asyncio.Event()
        self._stopping = False
        self._reconnect_now = False
        self._reconnect_delay: float | None = None
        self._suggested: list[str] = []
        self._discovered: list[Gateway] = []
        # The cursor the server stores for this device, as far as this client
        # knows: the persisted one, or the last one sent in a Cursor frame.
        self._server_cursor = state.cursor
        self._last_failure = "no connection attempt has finished"
        self.limits = SendLimits()
        """The server's size limits, as far as discovery reported them."""
        self.head_seq = 0
        """Highest inbox sequence the server reported (Connected, sync pages)."""
        self.error: BaseException | None = None
        """Why the session ended for good; None while it runs."""

    # Control.

    @property
    def connected(self) -> bool:
        """Whether a connection is open and authenticated."""
        return self._link is not None and self._link.opened

    @property
    def ready(self) -> bool:
        """Whether the server has accepted a connection at least once."""
        return self._ready.done() and self._ready.exception() is None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="switchboard-client")

    # The timeout is a parameter, not the caller's asyncio.timeout, because
    # its error carries the last connection failure.
    async def wait_ready(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait for the first ``Connected``.

        Raises SessionEnded if the server rejected the session, ClientClosed
        if the session was stopped, and ServerUnreachable after ``timeout``.
        """
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._ready)
        except TimeoutError:
            raise ServerUnreachable(
                f"no connection to a {self._transport_kind} gateway within"
                f" {timeout:g} s: {self._last_failure}"
            ) from None

    def reconnect(self) -> None:
        """Drop the current connection and reconnect without a backoff delay."""
        self._reconnect_now = True
        self._wake.set()
        link = self._link
        if link is not None:
            logger.info(
                "dropping the connection to %s on request", link.gateway.address
            )
            link.transport.abort()

    async def stop(self) -> None:
        """Close the connection gracefully and stop reconnecting."""
        self._stopping = True
        self._wake.set()
        link = self._link
        if link is not None:
            await self._close_transport(link.transport)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._background):
            task.cancel()
        self._finish(ClientClosed("the client was closed"))

    # Sending.

    def receipt(self, client_id: int) -> Sent | None:
        """Return the receipt of a recently acknowledged client id, if kept."""
        return self._outbox.receipt(client_id)

    def submit(
        self,
        client_id: int,
        recipient_id: int,
        body: bytes,
        content_type: int,
        *,
        group_id: int = 0,
        mentions: tuple[int, ...] = (),
    ) -> asyncio.Future[Sent]:
        """Queue a message and return the future of its receipt.

        A group message has ``recipient_id`` 0 and ``group_id`` set.

        The message is written now if a connection is open, and again on each
        reconnect until it is acknowledged. A client id that is already queued
        returns the queued message's future. Await it through
        ``asyncio.shield``: cancelling it would drop the receipt, not the
        message.
        """
        if self.error is not None:
            raise self.error
        waiter = self._waiters.get(client_id)
        if waiter is None:
            self._outbox.add(
                client_id,
                recipient_id,
                body,
                content_type,
                group_id=group_id,
                mentions=mentions,
            )
            waiter = asyncio.get_running_loop().create_future()
            waiter.add_done_callback(_retrieve_exception)
            self._waiters[client_id] = waiter
            link = self._link
            if link is not None:
                self._spawn(self._write_outbox(link))
        return waiter

    def submit_change(self, request: pb.ChangeRequest) -> asyncio.Future[pb.ChangeAck]:
        """Queue a ChangeRequest and return the future of its ChangeAck.

        The request gets the next request id. It is written now if a
        connection is open, and again on each reconnect until the server
        replies to it: reads, recalls and deletes are idempotent, and an edit
        to the current body changes nothing. The future fails with
        ChangeRejected when the server rejects the change.
        """
        if self.error is not None:
            raise self.error
        request.request_id = next(self._request_ids)
        future = asyncio.get_running_loop().create_future()
        self._changes[request.request_id] = _PendingChange(request, future)
        link = self._link
        if link is not None and link.opened:
            self._spawn(self._write_changes(link))
        return future

    async def send_typing(self, to: int, group_id: int, active: bool) -> bool:
        """Write a Typing frame if a connection is open; return whether it was.

        Typing is transient, so nothing is queued while offline.
        """
        link = self._link
        if link is None or not link.opened:
            return False
        frame = pb.Typing(to=to, group=group_id, active=active)
        await self._write(link, link.protocol.send(frame))
        return True

    async def watch_presence(self, users: list[int]) -> None:
        """Watch these users' presence on this and every later connection."""
        self._watched = list(users)
        link = self._link
        if link is not None and link.opened:
            await self._send_watched(link)

    async def _send_watched(self, link: _Link) -> None:
        frame = pb.PresenceSubscribe(users=self._watched)
        await self._write(link, link.protocol.send(frame))

    async def send_cursor(self, seq: int) -> None:
        """Tell the server the device stores everything up to ``seq``, if new."""
        link = self._link
        if link is None or not link.opened or seq <= self._server_cursor:
            return
        self._server_cursor = seq
        await self._write(link, link.protocol.send(pb.Cursor(seq=seq)))

    # The connection loop.

    async def _run(self) -> None:
        try:
            while not self._stopping:
                await self._attempt()
                if not self._stopping:
                    await self._pause()
        except SessionEnded as exc:
            logger.info("session ended: %s", exc)
            self._finish(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("client session failed")
            self._finish(exc)

    async def _attempt(self) -> None:
        gateways = await self._candidate_gateways()
        opened = await self._open_first(gateways)
        if opened is None:
            return
        gateway, transport = opened
        self._links += 1
        link = _Link(self._links, gateway, transport, self._options.max_frame_size)
        reason, idle = "the connection ended", False
        try:
            await self._serve(link)
        except _Lost as lost:
            reason, idle = lost.reason, lost.idle
        except ConnectionClosedError as exc:
            reason, idle = str(exc), link.awaiting_echo
        except ProtocolError as exc:
            reason = f"the server broke the protocol: {exc.reason}"
        finally:
            if self._link is link:
                self._link = None
            await self._close_transport(transport)
        if link.opened:
            self._heartbeat.connection_lost(idle=idle)
        self._last_failure = reason
        if not self._stopping:
            logger.info("disconnected from %s: %s", gateway.address, reason)

    async def _pause(self) -> None:
        if self._reconnect_now:
            self._reconnect_now = False
            return
        if self._reconnect_delay is not None:
            delay = self._backoff.jitter(self._reconnect_delay)
            self._reconnect_delay = None
        else:
            delay = self._backoff.next_delay()
        logger.info("reconnecting in %.2f s (attempt %d)", delay, self._backoff.attempt)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()
        self._reconnect_now = False

    async def _candidate_gateways(self) -> list[Gateway]:
        kind = self._transport_kind
        candidates: list[Gateway] = []
        if kind == "tcp":
            candidates += [Gateway("tcp", address) for address in self._suggested]
        self._suggested = []
        try:
            listing = await self._api.gateways()
        except (ServerUnreachable, ApiError) as exc:
            logger.info("gateway discovery failed, using known addresses: %s", exc)
        else:
            self._discovered = [g for g in listing.gateways if g.transport == kind]
            if listing.max_frame_size > 0:
                self.limits.max_frame_size = listing.max_frame_size
            if listing.max_body_size > 0:
                self.limits.max_body_size = listing.max_body_size
        candidates += self._discovered + self._fallback_gateways
        return list(dict.fromkeys(candidates))

    async def _open_first(
        self, gateways: list[Gateway]
    ) -> tuple[Gateway, Transport] | None:
        if not gateways:
            self._last_failure = f"no {self._transport_kind} gateway is known"
            return None
        for gateway in gateways:
            timeout = self._options.connect_timeout
            try:
                async with asyncio.timeout(timeout):
                    transport = await self._open_transport(gateway)
            except TimeoutError:
                self._last_failure = (
                    f"connecting to {gateway.address} timed out after {timeout:g} s"
                )
            except (ConnectionClosedError, OSError) as exc:
                self._last_failure = str(exc) or type(exc).__name__
            else:
                return gateway, transport
            logger.info("%s", self._last_failure)
        return None

    async def _serve(self, link: _Link) -> None:
        state = self._state
        connect = pb.Connect(
            version=PROTOCOL_VERSION,
            token=state.token or "",
            device=state.device,
            platform=self._platform,
            last_seq=self._inbox.contiguous,
            heartbeat=self._heartbeat.requested_interval(),
            conversations=self._options.conversations_on_connect,
        )
        # Connect and every unacknowledged Send and change leave at once, in
        # as few writes as fit, because the server keeps them until
        # authentication succeeds.
        frames = [link.protocol.send(connect)]
        for pending in self._outbox.to_write(link.number):
            frames.append(link.protocol.send(_send_frame(pending)))
        for change in self._changes_to_write(link.number):
            frames.append(link.protocol.send(change.request))
        self._link = link
        await self._write_frames(link, frames)

        try:
            async with asyncio.timeout(self._options.connect_timeout):
                while not link.opened:
                    await self._receive(link)
        except TimeoutError:
            raise _Lost(
                f"no Connected frame within {self._options.connect_timeout:g} s"
            ) from None
        keepalive = asyncio.create_task(self._keepalive(link))
        try:
            while True:
                await self._receive(link)
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    async def _receive(self, link: _Link) -> None:
        data = await link.transport.receive()
        link.last_received = asyncio.get_running_loop().time()
        link.echo.set()
        for event in link.protocol.receive_data(data):
            if isinstance(event, FrameReceived):
                await self._handle(link, event.message)

    async def _keepalive(self, link: _Link) -> None:
        # The client sends a heartbeat after a full interval without sending,
        # and presumes the connection dead if no data arrives after it.
        loop = asyncio.get_running_loop()
        while True:
            interval = max(1, self._heartbeat.interval)
            wait = link.last_sent + interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            idle = loop.time() - link.last_received >= interval
            link.echo.clear()
            link.awaiting_echo = True
            await self._write(link, HEARTBEAT)
            try:
                async with asyncio.timeout(self._options.echo_timeout):
                    await link.echo.wait()
            except TimeoutError:
                logger.info(
                    "no answer to a heartbeat within %g s; dropping the connection",
                    self._options.echo_timeout,
                )
                link.transport.abort()
                return
            link.awaiting_echo = False
            if idle:
                await self._probe_longer_interval(link)

    async def _probe_longer_interval(self, link: _Link) -> None:
        interval = self._heartbeat.period_succeeded()
        if interval is not None:
            logger.debug("asking for a heartbeat interval of %d s", interval)
            await self._write(link, link.protocol.send(pb.Heartbeat(interval=interval)))

    async def _write(self, link: _Link, data: bytes) -> None:
        async with link.write_lock:
            link.last_sent = asyncio.get_running_loop().time()
            try:
                await link.transport.send(data)
            except ConnectionClosedError as exc:
                # The reader sees the dead connection and reconnects.
                logger.debug("write failed: %s", exc)
                link.transport.abort()

    def _changes_to_write(self, connection: int) -> list[_PendingChange]:
        batch = [c for c in self._changes.values() if c.written_on != connection]
        for change in batch:
            change.written_on = connection
        return batch

    async def _write_changes(self, link: _Link) -> None:
        frames = [
            link.protocol.send(change.request)
            for change in self._changes_to_write(link.number)
        ]
        await self._write_frames(link, frames)

    async def _write_outbox(self, link: _Link) -> None:
        frames = [
            link.protocol.send(_send_frame(p))
            for p in self._outbox.to_write(link.number)
        ]
        await self._write_frames(link, frames)

    async def _write_frames(self, link: _Link, frames: list[bytes]) -> None:
        """Write ``frames`` in writes that fit the server's frame limit."""
        for data in pack_frames(frames, self.limits.max_frame_size):
            if self._link is not link:
                return
            await self._write(link, data)

    # Frames from the server.

    async def _handle(self, link: _Link, message: object) -> None:
        if isinstance(message, pb.Message):
            self._complete_push(link, message)
            if message.group_seq:
                self._add_timeline_entry(message)
                await self._sync_timelines(link)
            else:
                self._add_entry(message)
                await self._sync_if_gap(link)
        elif isinstance(message, pb.TimelinePage):
            link.timeline_syncs.discard(message.group)
            await self._on_timeline_page(link, message)
        elif isinstance(message, pb.SendAck):
            if message.sent_at == 0:
                message.sent_at = link.server_now()
            self._on_send_ack(message)
            if message.group_seq:
                await self._sync_timelines(link)
        elif isinstance(message, pb.SyncResponse):
            link.sync_in_flight = False
            await self._on_sync_page(link, message)
        elif isinstance(message, pb.Connected):
            await self._on_connected(link, message)
        elif isinstance(message, pb.Error):
            self._on_error(link, message)
        elif isinstance(message, pb.Reconnect):
            self._reconnect_delay = message.delay / 1000
            self._suggested = list(message.addresses)
            raise _Lost(f"the server asked to reconnect: {message.reason}")
        elif isinstance(message, pb.Heartbeat):
            self._heartbeat.applied(message.interval)
        elif isinstance(message, pb.ConversationList):
            self._book.apply_page(conversation_page(message, self._state))
            self._on_change()
        elif isinstance(message, pb.ChangeAck):
            change = self._changes.pop(message.request_id, None)
            if change is not None and not change.future.done():
                change.future.set_result(message)
        elif isinstance(message, pb.ReadReceipt):
            receipt = ReadReceipt(
                message.reader, message.group, message.message_id, message.read_at
            )
            self._book.apply_receipt(receipt)
            self._on_receipt(receipt)
            self._on_change()
        elif isinstance(message, pb.Typing):
            self._on_signal(
                TypingChanged(
                    message.sender, None, message.group, message.active, message.ttl
                )
            )
        elif isinstance(message, pb.PresenceUpdate):
            for presence in message.users:
                self._on_signal(
                    PresenceChanged(
                        presence.user, None, presence.online, presence.last_seen
                    )
                )

    async def _on_connected(self, link: _Link, connected: pb.Connected) -> None:
        state = self._state
        link.opened = True
        link.server_clock = (connected.server_time, asyncio.get_running_loop().time())
        self._backoff.reset()
        self.head_seq = connected.head_seq
        self._heartbeat.start(connected.heartbeat, connected.max_heartbeat)
        logger.info(
            "connected to %s (%s) user=%d device=%s head_seq=%d heartbeat=%d s",
            link.gateway.address,
            link.gateway.transport,
            connected.user_id,
            state.device,
            connected.head_seq,
            connected.heartbeat,
        )

        # Adopt what the server knows better: its inbox head when the cursor
        # is ahead of it, and the highest client id it stored from the device.
        changed = state.user_id != connected.user_id
        state.user_id = connected.user_id
        if link.cursor_ahead:
            self._inbox.reset(connected.head_seq)
            state.cursor = connected.head_seq
            self._server_cursor = 0
            changed = True
        if connected.last_client_id > state.last_client_id:
            state.last_client_id = connected.last_client_id
            changed = True
        if changed:
            await self._save_state()
        if not self._ready.done():
            self._ready.set_result(None)

        await self._on_sync_page(link, connected.sync, first=True)
        for head in connected.timelines:
            self._timelines.note_range(head.group, head.start_seq, head.head_seq)
        await self._sync_timelines(link)
        await self.send_cursor(state.cursor)
        # A watch list lasts as long as its connection, so each new one
        # repeats it.
        if self._watched:
            await self._send_watched(link)

    async def _on_sync_page(
        self, link: _Link, page: pb.SyncResponse, *, first: bool = False
    ) -> None:
        added = 0
        for entry in page.messages:
            added += self._add_entry(entry)
        self.head_seq = max(self.head_seq, page.head_seq)
        self._inbox.note_head(page.head_seq)
        # A page that added nothing while a gap remains would be asked for
        # again forever; wait for the next push to try again instead.
        if added or first:
            await self._sync_if_gap(link)
        elif self._inbox.gap() is not None:
            logger.warning(
                "sync after seq %d returned no new entry below head_seq %d",
                page.after_seq,
                page.head_seq,
            )

    async def _sync_if_gap(self, link: _Link) -> None:
        after = self._inbox.gap()
        if after is None or link.sync_in_flight or not link.opened:
            return
        link.sync_in_flight = True
        await self._write(link, link.protocol.send(pb.SyncRequest(after_seq=after)))

    def _complete_push(self, link: _Link, message: pb.Message) -> None:
        """Fill in what a live push leaves out: the time, and the recipient
        when it is this user."""
        if message.sent_at == 0:
            message.sent_at = link.server_now()
        if message.recipient == 0 and message.group == 0:
            message.recipient = self._state.user_id

    async def _on_timeline_page(self, link: _Link, page: pb.TimelinePage) -> None:
        self._timelines.note_range(page.group, page.start_seq, page.head_seq)
        added = 0
        for entry in page.messages:
            added += self._add_timeline_entry(entry)
        self._on_change()
        # As for inbox pages: a page that added nothing while a gap remains
        # is not asked for again until the next push.
        if added:
            await self._sync_timelines(link)
        elif self._timelines.gap(page.group) is not None:
            logger.warning(
                "timeline sync of group %d after seq %d returned no new entry"
                " below head_seq %d",
                page.group,
                page.after_seq,
                page.head_seq,
            )

    async def _sync_timelines(self, link: _Link) -> None:
        """Ask for the missing entries of each timeline, one request per group
        at a time."""
        if not link.opened:
            return
        frames = []
        for group, after in self._timelines.gaps():
            if group in link.timeline_syncs:
                continue
            link.timeline_syncs.add(group)
            request = pb.TimelineSync(group=group, after_seq=after)
            frames.append(link.protocol.send(request))
        await self._write_frames(link, frames)

    def _add_timeline_entry(self, message: pb.Message) -> bool:
        """Add an entry of a large group's timeline; return whether it is new."""
        item = inbox_item(message, self._state)
        added = self._timelines.add(message.group, message.group_seq, item)
        if added:
            if isinstance(item, Message):
                self._book.apply_timeline_message(item)
            self._on_change()
        return added

    def _add_entry(self, message: pb.Message, *, counted: bool = True) -> bool:
        """Add an entry to the inbox and the conversation book.

        ``counted`` is False for the entry built from a SendAck, which carries
        no unread count.
        """
        if message.seq == 0:
            return False
        item = inbox_item(message, self._state)
        self._book.apply_entry(item, message.unread if counted else None)
        added = self._inbox.add(message.seq, item)
        if added:
            self._on_change()
        return added

    def _on_send_ack(self, ack: pb.SendAck) -> None:
        result = self._outbox.acknowledge(ack.client_id, ack.seq, ack.id, ack.sent_at)
        if result is None:
            logger.debug(
                "ignoring SendAck for client_id %d: not pending", ack.client_id
            )
            return
        pending, sent = result
        waiter = self._waiters.pop(ack.client_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(sent)
        if ack.group_seq > 0:
            # A large group's timeline contains the message, but the server
            # does not push it to the connection that sent it.
            own = pb.Message(
                id=ack.id,
                sender=self._state.user_id,
                body=pending.body,
                content_type=pending.content_type,
                sent_at=ack.sent_at,
                group=pending.group_id,
                mentions=pending.mentions,
                group_seq=ack.group_seq,
            )
            self._add_timeline_entry(own)
        elif ack.seq > 0:
            # The sender's own inbox contains the message too, but the server
            # does not push it to the connection that sent it.
            own = pb.Message(
                seq=ack.seq,
                id=ack.id,
                sender=self._state.user_id,
                recipient=pending.recipient_id,
                body=pending.body,
                content_type=pending.content_type,
                sent_at=ack.sent_at,
                group=pending.group_id,
                mentions=pending.mentions,
            )
            self._add_entry(own, counted=False)

    def _on_error(self, link: _Link, error: pb.Error) -> None:
        name = _code_name(error.code)
        if error.fatal:
            if error.code in SESSION_ENDING_CODES:
                raise SessionEnded(ErrorCode(error.code), error.reason)
            if error.code == ErrorCode.FRAME_TOO_LARGE:
                self._reject_oversized(link, error.reason)
            idle = error.code == ErrorCode.HEARTBEAT_TIMEOUT
            raise _Lost(f"closed by the server: {name}: {error.reason}", idle=idle)
        if error.code == ErrorCode.CURSOR_AHEAD:
            logger.warning("server reported %s: %s", name, error.reason)
            link.cursor_ahead = True
        elif error.client_id:
            self._on_send_error(link, error)
        elif error.request_id in self._changes:
            self._on_change_error(error)
        else:
            logger.warning("server reported %s: %s", name, error.reason)

    def _on_send_error(self, link: _Link, error: pb.Error) -> None:
        client_id = error.client_id
        name = _code_name(error.code)
        if error.code in RETRYABLE_SEND_CODES:
            delay = error.retry_after / 1000 or MIN_SEND_RETRY_DELAY
            self._log_retry(name, delay)
            self._outbox.mark_unwritten(client_id)
            asyncio.get_running_loop().call_later(delay, self._retry_sends)
            return
        try:
            code = ErrorCode(error.code)
        except ValueError:
            code = ErrorCode.INVALID_MESSAGE
        self._fail_send(
            client_id, SendRejected(code, f"{error.reason} ({name})", client_id)
        )

    def _reject_oversized(self, link: _Link, reason: str) -> None:
        """Reject the queued messages that made the server close the link.

        The server closed the connection for a frame above its limit, which
        discovery did not report. Without this, every reconnect would resend
        the same frame. The reason names the limit; when it does not, the
        largest message written on the link is taken for the culprit.
        """
        written = [p for p in self._outbox.pending() if p.written_on == link.number]
        sizes = {p.client_id: frame_size(_send_frame(p)) for p in written}
        if not sizes:
            return
        limit = reported_frame_limit(reason)
        if limit is None:
            limit = max(sizes.values()) - 1
        self.limits.max_frame_size = min(self.limits.max_frame_size, limit)
        for client_id, size in sizes.items():
            if size > limit:
                self._fail_send(
                    client_id,
                    SendRejected(
                        ErrorCode.INVALID_MESSAGE,
                        f"the message needs a frame of {size} bytes and the"
                        f" server accepts frames of at most {limit}",
                        client_id,
                    ),
                )

    def _fail_send(self, client_id: int, error: SendRejected) -> None:
        if self._outbox.reject(client_id) is None:
            return
        logger.warning("send client_id=%d rejected: %s", client_id, error.reason)
        waiter = self._waiters.pop(client_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _on_change_error(self, error: pb.Error) -> None:
        name = _code_name(error.code)
        if error.code in RETRYABLE_SEND_CODES:
            delay = error.retry_after / 1000 or MIN_SEND_RETRY_DELAY
            self._log_retry(name, delay)
            self._changes[error.request_id].written_on = 0
            asyncio.get_running_loop().call_later(delay, self._retry_changes)
            return
        change = self._changes.pop(error.request_id)
        logger.info(
            "change request_id=%d rejected: %s: %s",
            error.request_id,
            name,
            error.reason,
        )
        try:
            code = ErrorCode(error.code)
        except ValueError:
            code = ErrorCode.INVALID_ARGUMENT
        if not change.future.done():
            change.future.set_exception(ChangeRejected(code, error.reason))

    def _log_retry(self, code_name: str, delay: float) -> None:
        """Warn about retried requests at most once per RETRY_LOG_INTERVAL."""
        self._retries_unlogged += 1
        now = time.monotonic()
        if now - self._retry_logged_at < RETRY_LOG_INTERVAL:
            return
        logger.warning(
            "%d request(s) failed with %s since the last report; the latest is"
            " sent again in %.0f ms",
            self._retries_unlogged,
            code_name,
            delay * 1000,
        )
        self._retries_unlogged = 0
        self._retry_logged_at = now

    def _retry_changes(self) -> None:
        link = self._link
        if link is not None and link.opened:
            self._spawn(self._write_changes(link))

    def _retry_sends(self) -> None:
        link = self._link
        if link is not None and link.opened:
            self._spawn(self._write_outbox(link))

    # Helpers.

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _close_transport(self, transport: Transport) -> None:
        try:
            async with asyncio.timeout(self._options.close_timeout):
                await transport.close()
        except TimeoutError:
            transport.abort()

    def _finish(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()
        for change in self._changes.values():
            if not change.future.done():
                change.future.set_exception(error)
        self._changes.clear()
        self._outbox.clear()
        self._on_change()


def _send_frame(pending: PendingSend) -> pb.Send:
    return pb.Send(
        to=pending.recipient_id,
        client_id=pending.client_id,
        body=pending.body,
        content_type=pending.content_type,
        group=pending.group_id,
        mentions=pending.mentions,
    )


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"


def _retrieve_exception(future: asyncio.Future[Sent]) -> None:
    # Mark the exception as retrieved: a caller that was cancelled no longer
    # awaits the future, and asyncio would log it as never retrieved.
    if not future.cancelled():
        future.exception()
