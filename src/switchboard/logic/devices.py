"""How many devices of one user may be online at once, per platform class.

A user may chat from a phone, a tablet, a browser and a desktop at the same
time, and each device gets every message. Apps often allow only one phone at
a time, though: a new mobile connection then signs the older one out. The
policy sets a limit per platform class (``Settings.max_online_*``, 0 for no
limit). When a connection takes a class over its limit, the oldest
connections of that class are closed with ``SESSION_REPLACED``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from switchboard.bus.base import Endpoint
from switchboard.config import Settings
from switchboard.ids import DeviceId, UserId

__all__ = ["DevicePolicy", "Eviction", "PlatformClass", "platform_class"]


class PlatformClass(enum.StrEnum):
    MOBILE = "mobile"
    """Android and iOS."""
    WEB = "web"
    DESKTOP = "desktop"
    OTHER = "other"
    """The command line, and platforms not given at login."""


_CLASS_OF_PLATFORM = {
    1: PlatformClass.MOBILE,  # PLATFORM_ANDROID
    2: PlatformClass.MOBILE,  # PLATFORM_IOS
    3: PlatformClass.WEB,
    4: PlatformClass.DESKTOP,
}


def platform_class(platform: int) -> PlatformClass:
    """Return the class of a wire ``Platform`` value."""
    return _CLASS_OF_PLATFORM.get(platform, PlatformClass.OTHER)


@dataclass(frozen=True, slots=True)
class Eviction:
    """A connection to close because a newer one took its place."""

    device: DeviceId
    endpoint: Endpoint
    reason: str


class DevicePolicy:
    """Tracks each user's online devices in connect order and applies limits.

    NOTE: the record lives in this process, like MemoryRoutingTable. With
    several logic processes it belongs in the shared routing store.
    """

    def __init__(self, limits: Mapping[PlatformClass, int]) -> None:
        self._limits = dict(limits)
        self._online: dict[UserId, dict[DeviceId, tuple[PlatformClass, Endpoint]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DevicePolicy:
        return cls(
            {
                PlatformClass.MOBILE: settings.max_online_mobile,
                PlatformClass.WEB: settings.max_online_web,
                PlatformClass.DESKTOP: settings.max_online_desktop,
                PlatformClass.OTHER: settings.max_online_other,
            }
        )

    def admit(
        self, user_id: UserId, device: DeviceId, platform: int, endpoint: Endpoint
    ) -> list[Eviction]:
        """Record a new connection; return the older ones it pushes out.

        A reconnect of the same device replaces its record and pushes out
        nobody on its own, because the routing table closes the old
        connection of a device.
        """
        kind = platform_class(platform)
        devices = self._online.setdefault(user_id, {})
        devices.pop(device, None)
        devices[device] = (kind, endpoint)
        limit = self._limits.get(kind, 0)
        if limit <= 0:
            return []

        same_class = [
            (other, where) for other, (k, where) in devices.items() if k is kind
        ]
        excess = same_class[: max(0, len(same_class) - limit)]
        evictions = []
        for other, where in excess:
            del devices[other]
            reason = (
                f"device {device!r} of this account connected, and at most"
                f" {limit} {kind.value} device(s) may be online at once;"
                f" device {other!r} was signed out"
            )
            evictions.append(Eviction(other, where, reason))
        return evictions

    def forget(self, user_id: UserId, device: DeviceId, endpoint: Endpoint) -> None:
        """Drop the record of a closed connection, if it is still the device's."""
        devices = self._online.get(user_id)
        if devices is None:
            return
        record = devices.get(device)
        if record is not None and record[1] == endpoint:
            del devices[device]
        if not devices:
            del self._online[user_id]

    def online(self, user_id: UserId) -> list[DeviceId]:
        """Return the user's recorded devices, oldest connection first."""
        return list(self._online.get(user_id, {}))
