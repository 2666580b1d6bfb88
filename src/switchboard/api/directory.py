"""The gateways an HTTP API serves when they run in other processes.

The embedded server lists its own listeners and needs no directory. A
cluster's dispatcher passes one to :class:`~switchboard.api.app.Services`,
and ``GET /v1/gateways``, the statistics and the admin drain use it.
"""

from __future__ import annotations

import abc
import enum

from switchboard.bus.base import GatewayLoad

__all__ = ["DrainOutcome", "GatewayDirectory"]


class DrainOutcome(enum.Enum):
    """Result of a drain request."""

    REQUESTED = "requested"
    NOT_FOUND = "not_found"
    ALREADY_DRAINING = "already_draining"
    LAST_GATEWAY = "last_gateway"
    """Refused: no other gateway accepts clients."""


class GatewayDirectory(abc.ABC):
    """Gateways of a deployment: discovery, load and drain requests."""

    @abc.abstractmethod
    async def listing(self) -> list[dict[str, str]]:
        """Return the ``gateways`` entries of ``GET /v1/gateways``, best first.

        Each entry has ``transport`` (``tcp`` or ``ws``) and ``address`` or
        ``url``. Draining gateways are left out.
        """

    @abc.abstractmethod
    async def loads(self) -> list[GatewayLoad]:
        """Return the load of every live gateway, draining ones included."""

    @abc.abstractmethod
    async def drain(self, name: str, *, force: bool) -> DrainOutcome:
        """Ask gateway ``name`` to drain.

        Without ``force`` the last gateway that accepts clients is not
        drained.
        """
