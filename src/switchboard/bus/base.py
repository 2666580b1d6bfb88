"""Bus interface: frames from gateways to the logic layer and back.

Gateways publish each frame of an authenticated connection (and each Connect)
as an :class:`Inbound`; the logic layer publishes :class:`Outbound` items to
the gateway that holds the target connection. The in-process implementation
calls the subscriber directly; a distributed one carries the same items over a
durable queue, so the logic layer deduplicates (it does, by client message id).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from switchboard.errors import SwitchboardError
from switchboard.ids import ConnectionId, DeviceId, UserId

__all__ = [
    "BROADCAST",
    "CONNECTION_CLOSED",
    "Action",
    "Bus",
    "BusUnavailable",
    "Endpoint",
    "GatewayLoad",
    "Inbound",
    "InboundHandler",
    "Outbound",
    "OutboundHandler",
    "SettledHook",
]


class BusUnavailable(SwitchboardError):
    """The bus could not take an item in time, because its broker is down."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Address of one client connection: its gateway and its number there."""

    gateway: str
    connection: ConnectionId


@dataclass(slots=True)
class GatewayLoad:
    """A gateway's report of its own load, for statistics and the dispatcher."""

    name: str
    address: str
    """Address clients connect to, ``host:port``."""
    by_platform: dict[int, int]
    """Authenticated connections by ``Platform`` value."""
    users: set[UserId]
    """Users with at least one authenticated connection there."""
    draining: bool
    cpu_percent: float | None = None
    """Share of one core the gateway's process used lately; None: the
    gateway runs in the process that reports the statistics."""
    rss_bytes: int | None = None
    """Resident set size of the gateway's process; None as for
    ``cpu_percent``."""

    @property
    def connections(self) -> int:
        return sum(self.by_platform.values())


BROADCAST: Final = "*"
"""``Endpoint.gateway`` that addresses every gateway. ``Endpoint.connection``
is then a user id, and each gateway writes the item to every authenticated
connection of that user. A clustered logic layer delivers this way while it
cannot read the routing table."""

CONNECTION_CLOSED: Final = 255
"""``Inbound.frame_type`` of the notice a gateway sends when it closes an
authenticated connection. Not a wire frame type; the payload is the reason."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One frame received by a gateway.

    ``user_id`` and ``device`` are set by the gateway once the connection is
    authenticated; for a Connect frame they are 0 and empty.
    """

    endpoint: Endpoint
    frame_type: int
    payload: bytes
    user_id: UserId
    device: DeviceId
    platform: int
    peer: str
    """Remote address, for logs and per-address limits."""


class Action(enum.Enum):
    """What the gateway does with the connection after writing ``data``."""

    NONE = "none"
    ACCEPT = "accept"
    """Mark the connection authenticated as (user_id, device)."""
    CLOSE = "close"
    """Close the connection after the data is written."""


@dataclass(frozen=True, slots=True)
class Outbound:
    """Bytes for one connection, and an optional action on it."""

    endpoint: Endpoint
    data: bytes
    action: Action = Action.NONE
    user_id: UserId = UserId(0)
    device: DeviceId = DeviceId("")
    heartbeat: int = 0
    """With ACCEPT: the heartbeat interval in seconds the gateway enforces."""
    reason: str = ""
    """With CLOSE: why, for the gateway's log."""


InboundHandler = Callable[[Inbound], Awaitable[None]]
OutboundHandler = Callable[[Outbound], None]
SettledHook = Callable[[], Awaitable[None]]
"""Returns once the work that the handler started for the frames handled so
far has finished; later frames' work need not be waited for."""


class Bus(abc.ABC):
    @abc.abstractmethod
    def subscribe_inbound(
        self, handler: InboundHandler, settled: SettledHook | None = None
    ) -> None:
        """Register the logic layer's handler for every gateway's frames.

        ``handler`` may return before a frame's work is done (a Send is
        stored in the background). A durable bus awaits ``settled`` before it
        acknowledges frames to its queue, so frames are redelivered after a
        crash before then. Without ``settled`` it acknowledges frames once
        ``handler`` returns.
        """

    @abc.abstractmethod
    def subscribe_outbound(self, gateway: str, handler: OutboundHandler) -> None:
        """Register ``gateway``'s handler for items addressed to it."""

    @abc.abstractmethod
    def unsubscribe_outbound(self, gateway: str) -> None: ...

    @abc.abstractmethod
    async def publish_inbound(self, item: Inbound) -> None:
        """Hand a frame to the logic layer; frames of one connection keep order."""

    @abc.abstractmethod
    def publish_outbound(self, item: Outbound) -> None:
        """Hand bytes to the gateway of ``item.endpoint``; never blocks."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources."""
