"""Sans-IO adaptive heartbeat policy.

Mobile networks drop idle TCP connections at NAT and firewall timeouts that
the client cannot see, and every heartbeat costs data and battery. The policy
starts at the server's interval. After ``probe_after`` idle periods that
ended with an echoed heartbeat, it requests a longer interval (``growth``
times the current one, at most the server's maximum). When a connection dies
while idle, it steps back to the longest interval that has worked and stops
probing for ``cooldown`` periods. Each further failed probe doubles that
pause (up to ``MAX_COOLDOWN_FACTOR`` times ``cooldown``), so a network whose
limit is just above the good interval costs ever fewer reconnects; a probe
that succeeds resets it.

The caller reports events; the policy never reads a clock.
"""

from __future__ import annotations

import math

__all__ = ["MAX_COOLDOWN_FACTOR", "HeartbeatPolicy"]

MAX_COOLDOWN_FACTOR = 64
"""Maximum pause after repeated failed probes, as a multiple of ``cooldown``."""


class HeartbeatPolicy:
    """Choose the heartbeat interval, in whole seconds, from observed outcomes.

    The caller:

    * calls :meth:`start` with the interval and maximum from ``Connected``;
    * calls :meth:`period_succeeded` when the server echoes a heartbeat sent
      after a full idle interval; a non-None result is a new interval to
      request with a ``Heartbeat`` frame;
    * calls :meth:`applied` with the interval the server answers;
    * calls :meth:`connection_lost` when a connection ends, with ``idle``
      true if it died while waiting for a heartbeat answer.
    """

    __slots__ = (
        "_cooldown_left",
        "_cooldown_periods",
        "_good",
        "_interval",
        "_max_interval",
        "_successes",
        "cooldown",
        "growth",
        "min_interval",
        "probe_after",
    )

    def __init__(
        self,
        *,
        probe_after: int = 3,
        growth: float = 1.5,
        cooldown: int = 20,
        min_interval: int = 5,
    ) -> None:
        if probe_after < 1:
            raise ValueError(f"invalid probe_after {probe_after}: must be 1 or more")
        if growth <= 1.0:
            raise ValueError(f"invalid growth {growth}: must be above 1.0")
        if cooldown < 0:
            raise ValueError(f"invalid cooldown {cooldown}: must be 0 or more")
        self.probe_after = probe_after
        self.growth = growth
        self.cooldown = cooldown
        self.min_interval = min_interval
        self._interval = 0
        self._good = 0
        self._max_interval = 0
        self._successes = 0
        self._cooldown_left = 0
        self._cooldown_periods = cooldown

    @property
    def interval(self) -> int:
        """Interval in force, in seconds; 0 before the first :meth:`start`."""
        return self._interval

    @property
    def good_interval(self) -> int:
        """Maximum interval that has survived an idle period, in seconds."""
        return self._good

    @property
    def probing(self) -> bool:
        """Whether the interval in force is longer than any that has worked."""
        return self._interval > self._good

    def requested_interval(self) -> int:
        """Return the interval to ask for in ``Connect``; 0 for the server default."""
        return self._good

    def start(self, interval: int, max_interval: int) -> None:
        """Begin a connection whose ``Connected`` frame granted ``interval``."""
        self._max_interval = max(max_interval, interval)
        self._interval = interval
        if self._good == 0 or self._good > interval:
            self._good = interval
        self._successes = 0

    def applied(self, interval: int) -> None:
        """Record the interval the server applied after a request."""
        self._interval = interval
        self._good = min(self._good, interval)

    def period_succeeded(self) -> int | None:
        """Count an echoed idle period; return a longer interval to probe, if due."""
        if self._interval > self._good:
            self._good = self._interval
            self._cooldown_periods = self.cooldown
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            return None
        self._successes += 1
        if self._successes < self.probe_after:
            return None
        candidate = min(math.ceil(self._interval * self.growth), self._max_interval)
        if candidate <= self._interval:
            return None
        self._successes = 0
        self._interval = candidate
        return candidate

    def connection_lost(self, *, idle: bool) -> None:
        """Record that a connection ended; ``idle``: while awaiting a heartbeat echo.

        A connection that dies while busy tells nothing about idle timeouts.
        One that dies idle at a probed interval steps back to the last good
        one. One that dies idle at a proven interval suggests the network
        changed, so the good interval shrinks by the growth factor. Either
        way, probing pauses.
        """
        self._successes = 0
        if not idle or self._interval == 0:
            return
        self._cooldown_left = self._cooldown_periods
        if self._interval > self._good:
            self._cooldown_periods = min(
                self._cooldown_periods * 2, self.cooldown * MAX_COOLDOWN_FACTOR
            )
        else:
            shrunk = max(self.min_interval, math.floor(self._interval / self.growth))
            self._good = min(self._interval, shrunk)
        self._interval = self._good
