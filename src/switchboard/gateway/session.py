"""One client connection in the gateway, whatever its transport.

A session feeds received bytes to the sans-IO protocol, answers heartbeats,
queues frames that arrive before authentication ends, forwards the rest to
the logic layer through the bus in order, and writes what comes back. The
transport adapters (tcp.py, websocket.py) subclass it and supply the four
transport hooks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from switchboard.bus.base import CONNECTION_CLOSED, Action, Endpoint, Inbound, Outbound
from switchboard.errors import ErrorCode, ProtocolError
from switchboard.ids import DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role, State
from switchboard.protocol.frames import FrameType, encode
from switchboard.protocol.framing import HEARTBEAT
from switchboard.ratelimit import TokenBucket

if TYPE_CHECKING:
    from switchboard.gateway.gateway import Gateway

__all__ = ["Session"]

logger = logging.getLogger("switchboard.gateway")

MAX_QUEUED_FRAMES = 256
"""Inbound frames waiting for the logic layer before the session stops reading."""

PAUSE_QUEUE = 1
"""Reading paused: too many frames wait for the logic layer."""
PAUSE_RATE = 2
"""Reading paused: the connection exceeded its frame or byte rate."""
PAUSE_DRAIN = 4
"""Reading paused for good: the gateway is draining."""


class Session:
    """Gateway state of one connection; subclasses bind it to a transport."""

    __slots__ = (
        "_held_in",
        "_held_out",
        "_pauses",
        "_queue",
        "_rates",
        "_worker",
        "closed",
        "connection_id",
        "device",
        "endpoint",
        "gateway",
        "heartbeat",
        "peer",
        "platform",
        "protocol",
        "user_id",
    )

    transport_name = "?"

    def __init__(self, gateway: Gateway, peer: str) -> None:
        self.gateway = gateway
        self.peer = peer
        self.connection_id = gateway.next_connection_id()
        self.endpoint = Endpoint(gateway.name, self.connection_id)
        self.protocol = Connection(Role.SERVER, gateway.settings.max_frame_size)
        self.user_id = UserId(0)
        self.device = DeviceId("")
        self.platform = 0
        self.heartbeat = gateway.settings.heartbeat
        self.closed = False
        # Made when a frame waits for the bus and dropped when none does: an
        # empty deque costs 760 bytes, a fifth of an idle TCP connection.
        self._queue: deque[Inbound] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._held_in: list[FrameReceived] | None = None
        self._held_out: list[bytes] | None = None
        self._pauses = 0
        self._rates: tuple[TokenBucket, TokenBucket] | None = None

    # Transport hooks.

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def write_buffer_size(self) -> int:
        raise NotImplementedError

    def close_transport(self) -> None:
        raise NotImplementedError

    def set_reading(self, enabled: bool) -> None:
        raise NotImplementedError

    def pause(self, reason: int) -> None:
        """Stop reading for ``reason`` (one of the PAUSE_* flags)."""
        if not self._pauses:
            self.set_reading(False)
        self._pauses |= reason

    def resume(self, reason: int) -> None:
        """Lift the pause for ``reason``; reading resumes when none is left."""
        if not self._pauses & reason:
            return
        self._pauses &= ~reason
        if not self._pauses and not self.closed:
            self.set_reading(True)

    # Inbound.

    @property
    def host(self) -> str:
        """The peer's address without its port, for per-address logs and caps."""
        return self.peer.rpartition(":")[0]

    @property
    def authenticated(self) -> bool:
        return self.user_id != 0

    @property
    def forwarding(self) -> bool:
        """Whether frames read from the client still wait to go on the bus."""
        return bool(self._queue) or self._worker is not None

    def opened(self) -> bool:
        """Register with the gateway; call once the transport is up.

        Returns False, after sending a fatal error and closing, when the
        peer's address already has the maximum number of connections.
        """
        if not self.gateway.register(self):
            error = pb.Error(
                code=ErrorCode.TOO_MANY_CONNECTIONS,
                reason="too many connections from this address; close some and retry",
                fatal=True,
                retry_after=10_000,
            )
            self.write(encode(error))
            self.closed = True
            self.close_transport()
            return False
        self.gateway.churn.opened += 1
        logger.debug(
            "connected conn=%d peer=%s transport=%s",
            self.connection_id,
            self.peer,
            self.transport_name,
        )
        return True

    def receive_data(self, data: bytes) -> None:
        """Handle bytes read from the transport."""
        try:
            events = self.protocol.receive_data(data)
        except ProtocolError as exc:
            self.gateway.reject_log.warning(
                f"protocol:{self.host}",
                "protocol error conn=%d peer=%s user=%d: %s",
                self.connection_id,
                self.peer,
                self.user_id,
                exc.reason,
            )
            self.send_and_close(self.protocol.fail(exc), exc.code.name.lower())
            return
        if self.authenticated:
            self.gateway.wheel.touch(self.connection_id, self.timeout_ticks())
        self._limit_rate(len(events), len(data))
        for event in events:
            if isinstance(event, FrameReceived):
                self._receive_frame(event)
            else:
                self.write(HEARTBEAT)

    def _limit_rate(self, frames: int, size: int) -> None:
        # Spending into debt and pausing until it is paid back slows a fast
        # client to the configured rates without failing any of its frames.
        settings = self.gateway.settings
        # NOTE: frame_rate 0 turns the byte rate off too.
        if settings.frame_rate <= 0 or self._pauses & PAUSE_RATE:
            return
        now = time.monotonic()
        if self._rates is None:
            self._rates = (
                TokenBucket(settings.frame_rate, settings.frame_rate, now),
                TokenBucket(settings.byte_rate, settings.byte_rate, now),
            )
        frame_bucket, byte_bucket = self._rates
        delay = max(frame_bucket.debit(now, frames), byte_bucket.debit(now, size))
        if delay > 0:
            self.pause(PAUSE_RATE)
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.resume, PAUSE_RATE)

    def _receive_frame(self, event: FrameReceived) -> None:
        # Until Connected is sent, every frame after Connect waits, including
        # a HeartbeatInterval whose reply must not precede Connected.
        if self._held_in is not None and event.type is not FrameType.CONNECT:
            self._held_in.append(event)
        elif event.type is FrameType.HEARTBEAT_INTERVAL:
            self._set_heartbeat(event.message)
        elif event.type is FrameType.CONNECT:
            assert isinstance(event.message, pb.Connect)
            self.platform = event.message.platform
            self._held_in = []
            self._held_out = []
            self._enqueue(self._inbound(event))
        else:
            self._enqueue(self._inbound(event))

    def _set_heartbeat(self, message: object) -> None:
        assert isinstance(message, pb.Heartbeat)
        settings = self.gateway.settings
        if message.interval == 0:
            self.heartbeat = settings.heartbeat
        else:
            self.heartbeat = max(
                settings.min_heartbeat, min(message.interval, settings.max_heartbeat)
            )
        self.write(encode(pb.Heartbeat(interval=self.heartbeat)))
        if self.authenticated:
            self.gateway.wheel.touch(self.connection_id, self.timeout_ticks())

    def timeout_ticks(self) -> int:
        """Ticks of silence before the wheel closes the connection.

        The timeout is 1.5 heartbeat intervals. One tick is added because the
        current tick has partly passed already, so the close comes between
        the timeout and the timeout plus one tick.
        """
        return (self.heartbeat * 3 + 1) // 2 + 1

    def _inbound(self, event: FrameReceived) -> Inbound:
        return Inbound(
            self.endpoint,
            event.type,
            event.payload,
            self.user_id,
            self.device,
            self.platform,
            self.peer,
        )

    def _enqueue(self, item: Inbound) -> None:
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(item)
        if self._worker is None:
            self._worker = asyncio.create_task(self._forward(queue))
        if len(queue) > MAX_QUEUED_FRAMES:
            self.pause(PAUSE_QUEUE)

    async def _forward(self, queue: deque[Inbound]) -> None:
        # Frames go to the logic layer one at a time, so they keep their order.
        bus = self.gateway.bus
        try:
            while queue and not self.closed:
                await bus.publish_inbound(queue.popleft())
                if len(queue) == MAX_QUEUED_FRAMES // 2:
                    self.resume(PAUSE_QUEUE)
        except Exception:
            logger.exception("forwarding a frame failed conn=%d", self.connection_id)
            self.send_and_close(
                encode(
                    pb.Error(
                        code=ErrorCode.INTERNAL_ERROR,
                        reason="internal error",
                        fatal=True,
                    )
                ),
                "internal_error",
            )
        finally:
            self._worker = None
            if not queue:
                self._queue = None

    # Outbound.

    def deliver(self, item: Outbound) -> None:
        """Handle an item the logic layer addressed to this connection."""
        if self.closed:
            return
        if item.action is Action.ACCEPT:
            self._accept(item)
        elif item.action is Action.CLOSE:
            self.send_and_close(item.data, item.reason or "closed by server")
        elif self._held_out is not None:
            self._held_out.append(item.data)
        else:
            self.send(item.data)

    def _accept(self, item: Outbound) -> None:
        self.user_id = item.user_id
        self.device = item.device
        self.heartbeat = item.heartbeat
        self.protocol.state = State.OPEN
        self.send(item.data)
        held_out, self._held_out = self._held_out or [], None
        for data in held_out:
            self.send(data)
        held_in, self._held_in = self._held_in or [], None
        for event in held_in:
            self._receive_frame(event)
        self.gateway.wheel.touch(self.connection_id, self.timeout_ticks())
        self.gateway.churn.authenticated += 1
        logger.debug(
            "authenticated conn=%d user=%d device=%s heartbeat=%d",
            self.connection_id,
            self.user_id,
            self.device,
            self.heartbeat,
        )

    def send(self, data: bytes) -> None:
        """Write ``data``; disconnect a client whose unread backlog is too large."""
        if self.closed:
            return
        self.write(data)
        if self.write_buffer_size() > self.gateway.settings.outbound_limit:
            self.gateway.reject_log.warning(
                f"slow:{self.host}",
                "slow consumer conn=%d user=%d: more than %d bytes unread",
                self.connection_id,
                self.user_id,
                self.gateway.settings.outbound_limit,
            )
            self.close("slow_consumer", abort=True)

    def send_and_close(self, data: bytes, reason: str) -> None:
        self.send(data)
        self.close(reason)

    def expire(self) -> None:
        """Close the connection because the timing wheel found it silent."""
        if self.authenticated:
            code, reason = (
                ErrorCode.HEARTBEAT_TIMEOUT,
                "no frame within the heartbeat timeout",
            )
        else:
            code, reason = (
                ErrorCode.AUTH_TIMEOUT,
                "no Connect frame within the time allowed",
            )
        self.send_and_close(
            encode(pb.Error(code=code, reason=reason, fatal=True)), code.name.lower()
        )

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Close the connection once; tell the logic layer if it was authenticated."""
        if self.closed:
            return
        self.closed = True
        self.gateway.unregister(self)
        if abort:
            self.abort_transport()
        else:
            self.close_transport()
        self.gateway.churn.closed += 1
        logger.log(
            logging.DEBUG if _is_routine_close(reason) else logging.INFO,
            "disconnected conn=%d user=%d device=%s reason=%s",
            self.connection_id,
            self.user_id,
            self.device,
            reason,
        )
        if self.authenticated:
            notice = Inbound(
                self.endpoint,
                CONNECTION_CLOSED,
                reason.encode(),
                self.user_id,
                self.device,
                self.platform,
                self.peer,
            )
            self.gateway.notify_closed(notice)

    def abort_transport(self) -> None:
        self.close_transport()


_ROUTINE_CLOSE_REASONS = frozenset(("peer closed", "draining", "server stopping"))


def _is_routine_close(reason: str) -> bool:
    """Return whether a close reason is too common to log at INFO one by one.

    Clients closing or losing their connection, and closes for a drain or a
    stop, are counted in the gateway's summary line instead. Closes that the
    server decides for one connection, such as a heartbeat timeout, a
    protocol error or a slow consumer, are logged at INFO.
    """
    return reason in _ROUTINE_CLOSE_REASONS or reason.startswith("connection lost")
