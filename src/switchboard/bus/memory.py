"""In-process bus for the embedded server: direct calls, no queue."""

from __future__ import annotations

import logging

from switchboard.bus.base import (
    Bus,
    Inbound,
    InboundHandler,
    Outbound,
    OutboundHandler,
    SettledHook,
)

__all__ = ["InProcessBus"]

logger = logging.getLogger("switchboard.bus")


class InProcessBus(Bus):
    """Calls the logic layer's handler in the publishing coroutine.

    Frames of one connection therefore reach the logic layer in order, and a
    frame is handled once. Nothing survives a restart, which the embedded
    server does not need: it acknowledges a message only after storing it.
    """

    def __init__(self) -> None:
        self._inbound: InboundHandler | None = None
        self._outbound: dict[str, OutboundHandler] = {}

    def subscribe_inbound(
        self, handler: InboundHandler, settled: SettledHook | None = None
    ) -> None:
        # Nothing is queued, so there is nothing to acknowledge once settled.
        self._inbound = handler

    def subscribe_outbound(self, gateway: str, handler: OutboundHandler) -> None:
        self._outbound[gateway] = handler

    def unsubscribe_outbound(self, gateway: str) -> None:
        self._outbound.pop(gateway, None)

    async def publish_inbound(self, item: Inbound) -> None:
        if self._inbound is None:
            raise RuntimeError("no logic layer subscribed to the bus")
        await self._inbound(item)

    def publish_outbound(self, item: Outbound) -> None:
        handler = self._outbound.get(item.endpoint.gateway)
        if handler is None:
            # The gateway is gone, and so is the connection: the recipient
            # catches up by sync when it reconnects.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("dropped item for unknown gateway %s", item.endpoint)
            return
        handler(item)

    async def close(self) -> None:
        self._inbound = None
        self._outbound.clear()
