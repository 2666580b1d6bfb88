"""The gateway: its connections, the timing wheel and the drain."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from dataclasses import dataclass

from switchboard.bus.base import (
    BROADCAST,
    CONNECTION_CLOSED,
    Action,
    Bus,
    Endpoint,
    GatewayLoad,
    Inbound,
    Outbound,
)
from switchboard.config import Settings
from switchboard.gateway.session import PAUSE_DRAIN, Session
from switchboard.gateway.wheel import TimingWheel
from switchboard.ids import ConnectionId, DeviceId, UserId
from switchboard.logs import RateLimitedLog
from switchboard.protocol import pb
from switchboard.protocol.frames import encode

__all__ = ["TICK", "Gateway", "GatewayStats", "spread_delays"]

logger = logging.getLogger("switchboard.gateway")

TICK = 1.0
"""Seconds per timing-wheel tick: the resolution of heartbeat and auth timeouts."""

CHURN_LOG_TICKS = 60
"""Ticks between two log lines that count the connections opened and closed."""


@dataclass(slots=True)
class Churn:
    """Connections opened, authenticated and closed since the last summary.

    Routine connection events are logged one by one at DEBUG only: in a
    reconnect storm, INFO lines for each cost a fifth of the server's CPU.
    """

    opened: int = 0
    authenticated: int = 0
    closed: int = 0


@dataclass(frozen=True, slots=True)
class GatewayStats:
    """Counts of a gateway's per-connection bookkeeping, for tests and debugging."""

    connections: int
    """Registered connections."""
    addresses: int
    """Peer addresses with at least one connection, for the per-address cap."""
    address_connections: int
    """Connections counted against the per-address cap, over all addresses."""
    wheel_entries: int
    """Connections with a deadline in the timing wheel."""


def spread_delays(
    count: int, window: float, rng: random.Random | None = None
) -> list[int]:
    """Return ``count`` reconnect delays in milliseconds, evenly over ``window`` s.

    The window is cut into ``count`` equal slots, each delay is a random
    point within its own slot, and the delays come in random order. So every
    stretch of the window gets its share of reconnects, give or take one,
    and the receiving gateways see a steady rate of ``count / window`` per
    second. Independent uniform delays would vary by about the square root
    of each second's share.
    """
    generator = rng or random.Random()
    slot = window / count if count else 0.0
    delays = [int((index + generator.random()) * slot * 1000) for index in range(count)]
    generator.shuffle(delays)
    return delays


class Gateway:
    """Holds client connections and moves their frames to and from the bus."""

    def __init__(self, name: str, settings: Settings, bus: Bus) -> None:
        self.name = name
        self.settings = settings
        self.bus = bus
        self.wheel: TimingWheel[ConnectionId] = TimingWheel(size=64)
        self.reject_log = RateLimitedLog(logger)
        self.draining = False
        self._sessions: dict[ConnectionId, Session] = {}
        self._per_host: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._ticker: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._notices: set[asyncio.Task[None]] = set()
        self.churn = Churn()
        self._ticks = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def stats(self) -> GatewayStats:
        """Return the gateway's per-connection bookkeeping counts."""
        return GatewayStats(
            connections=len(self._sessions),
            addresses=len(self._per_host),
            address_connections=sum(self._per_host.values()),
            wheel_entries=len(self.wheel),
        )

    def start(self) -> None:
        self.bus.subscribe_outbound(self.name, self._on_outbound)
        loop = asyncio.get_running_loop()
        self._next_tick = loop.time() + TICK
        self._ticker = loop.call_at(self._next_tick, self._on_timer)
        logger.info("gateway %s started", self.name)

    def load(self, address: str) -> GatewayLoad:
        """Count the authenticated connections, by platform and by user.

        ``address`` is where clients reach this gateway. Walks every
        connection: meant for statistics requests, not for each frame.
        """
        by_platform: dict[int, int] = {}
        users: set[UserId] = set()
        for session in self._sessions.values():
            if session.authenticated:
                by_platform[session.platform] = by_platform.get(session.platform, 0) + 1
                users.add(UserId(session.user_id))
        return GatewayLoad(self.name, address, by_platform, users, self.draining)

    def forwarding(self) -> int:
        """Return the number of connections whose frames still wait for the bus."""
        return sum(1 for session in self._sessions.values() if session.forwarding)

    def next_connection_id(self) -> ConnectionId:
        return ConnectionId(next(self._ids))

    def register(self, session: Session) -> bool:
        """Track a new connection; return False if its address is over the cap."""
        host = session.host
        count = self._per_host.get(host, 0)
        limit = self.settings.max_connections_per_ip
        if limit and count >= limit:
            self.reject_log.warning(
                f"cap:{host}",
                "rejected connection from %s: %d connections, the per-address cap",
                host,
                count,
            )
            return False
        self._per_host[host] = count + 1
        self._sessions[session.connection_id] = session
        # Plus one tick, as in Session.timeout_ticks.
        auth_ticks = math.ceil(self.settings.auth_timeout / TICK) + 1
        self.wheel.touch(session.connection_id, auth_ticks)
        return True

    def unregister(self, session: Session) -> None:
        if self._sessions.pop(session.connection_id, None) is None:
            return
        self.wheel.discard(session.connection_id)
        host = session.host
        count = self._per_host.pop(host, 0) - 1
        if count > 0:
            self._per_host[host] = count

    def notify_closed(self, notice: Inbound) -> None:
        """Tell the logic layer that an authenticated connection is gone."""
        task = asyncio.get_running_loop().create_task(self.bus.publish_inbound(notice))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    def _on_outbound(self, item: Outbound) -> None:
        if item.endpoint.gateway == BROADCAST:
            self._deliver_to_user(UserId(item.endpoint.connection), item)
            return
        session = self._sessions.get(item.endpoint.connection)
        if session is not None:
            session.deliver(item)
        elif item.action is Action.ACCEPT:
            # The connection closed while the logic layer authenticated it, so
            # its close sent no notice; without one its route would stay.
            logger.info(
                "connection closed before authentication finished conn=%d"
                " user=%d device=%s",
                item.endpoint.connection,
                item.user_id,
                item.device,
            )
            self.notify_closed(
                Inbound(
                    item.endpoint,
                    CONNECTION_CLOSED,
                    b"closed before authentication finished",
                    item.user_id,
                    item.device,
                    0,
                    "",
                )
            )

    def _deliver_to_user(self, user_id: UserId, item: Outbound) -> None:
        # NOTE: walks every connection; add an index by user if broadcasts
        # (made only while the routing table is unreachable) become common.
        for session in list(self._sessions.values()):
            if session.user_id == user_id:
                session.deliver(item)

    def routes(self) -> list[tuple[UserId, DeviceId, Endpoint]]:
        """Return (user, device, endpoint) of every authenticated connection."""
        return [
            (UserId(session.user_id), DeviceId(session.device), session.endpoint)
            for session in self._sessions.values()
            if session.authenticated
        ]

    def tick(self) -> int:
        """Advance the timing wheel one tick and close the connections it expires.

        Returns the number closed. The gateway calls this once per TICK
        seconds; tests call it directly to run the wheel on a virtual clock.
        """
        expired = self.wheel.advance()
        for connection_id in expired:
            session = self._sessions.get(connection_id)
            if session is not None:
                session.expire()
        return len(expired)

    def _on_timer(self) -> None:
        # One timer for all connections, scheduled against the loop clock so
        # that a late tick does not delay the ones after it.
        loop = asyncio.get_running_loop()
        self.tick()
        self._ticks += 1
        if self._ticks % CHURN_LOG_TICKS == 0:
            self.log_churn()
        self._next_tick = max(self._next_tick + TICK, loop.time())
        self._ticker = loop.call_at(self._next_tick, self._on_timer)

    def log_churn(self) -> None:
        """Log the connection counts since the last call, if any, and reset them."""
        churn = self.churn
        if churn.opened or churn.closed:
            logger.info(
                "gateway %s in the last %d s: %d connections opened, %d"
                " authenticated, %d closed; %d open",
                self.name,
                round(CHURN_LOG_TICKS * TICK),
                churn.opened,
                churn.authenticated,
                churn.closed,
                len(self._sessions),
            )
        self.churn = Churn()

    def stop_reading(self) -> None:
        """Stop taking frames from clients, first step of a drain."""
        self.draining = True
        for session in list(self._sessions.values()):
            session.pause(PAUSE_DRAIN)

    def send_reconnect(self, window: float, reason: str) -> int:
        """Tell every client to reconnect after a delay spread over ``window`` s.

        Each connection gets a Reconnect frame with its delay from
        :func:`spread_delays` and is closed once the frame is written.
        Returns the number of connections sent a Reconnect frame.
        """
        sessions = list(self._sessions.values())
        delays = spread_delays(len(sessions), window)
        for session, delay in zip(sessions, delays, strict=True):
            frame = encode(pb.Reconnect(delay=delay, reason=reason))
            session.send_and_close(frame, "draining")
        logger.info("gateway %s told %d clients to reconnect", self.name, len(sessions))
        return len(sessions)

    async def stop(self) -> None:
        """Close what is left and stop the timer."""
        for session in list(self._sessions.values()):
            session.close("server stopping", abort=True)
        if self._ticker is not None:
            self._ticker.cancel()
        if self._notices:
            await asyncio.wait(set(self._notices))
        self.bus.unsubscribe_outbound(self.name)
        logger.info("gateway %s stopped", self.name)
