"""Fault settings of the chaos proxy and the counts of faults it injected."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["FaultCounts", "FaultSettings"]


@dataclass(slots=True)
class FaultSettings:
    """What the chaos proxy does to the bytes it forwards. Times are in seconds.

    Each probability applies to one chunk: the bytes one read returned on
    one side of a proxied connection. ``reset`` and ``blackhole`` therefore
    strike in proportion to traffic, not to time.
    """

    seed: int = 0
    """Seed of every random choice; connection number n draws from its own
    generator seeded with (seed, n), so a rerun repeats each connection's
    fault schedule."""
    split: float = 0.0
    """Probability that a chunk is cut at one to three random byte positions
    and written as separate TCP segments."""
    coalesce: float = 0.0
    """Probability that the proxy waits ``coalesce_wait`` before writing a
    chunk, and writes it together with every chunk that arrived meanwhile."""
    coalesce_wait: float = 0.005
    delay: float = 0.0
    """One-way latency added to every chunk."""
    jitter: float = 0.0
    """Random extra latency per chunk, uniform in [0, jitter]; the proxy keeps
    the byte order, so a chunk never overtakes an earlier one."""
    loss: float = 0.0
    """Probability that a chunk is lost once and arrives after
    ``retransmit_delay`` more, which is what a lost segment costs a TCP
    connection."""
    retransmit_delay: float = 0.4
    reset: float = 0.0
    """Probability that a chunk resets the connection: both sides get a TCP
    RST and the chunk is dropped."""
    blackhole: float = 0.0
    """Probability that a chunk black-holes the connection: from then on the
    proxy forwards nothing in either direction and closes neither side, so
    each end sees a silent, half-open connection."""
    blackhole_hold: float = 300.0
    """Time a black-holed connection is held before the proxy closes it, if
    neither end closed it first."""

    def validate(self) -> None:
        """Raise ValueError naming the setting when a value is out of range."""
        for name in ("split", "coalesce", "loss", "reset", "blackhole"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"invalid {name}={value!r}: a probability is from 0 to 1"
                )
        for name in (
            "coalesce_wait",
            "delay",
            "jitter",
            "retransmit_delay",
            "blackhole_hold",
        ):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ValueError(f"invalid {name}={value!r}: use 0 seconds or more")

    def replace(self, **changes: float | int) -> FaultSettings:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(slots=True)
class FaultCounts:
    """Faults and traffic the proxy has produced since it started."""

    connections: int = 0
    """Client connections accepted."""
    refused: int = 0
    """Client connections closed because the target refused or timed out."""
    splits: int = 0
    """Chunks cut into several segments."""
    coalesced: int = 0
    """Writes that joined two or more chunks."""
    delayed: int = 0
    """Chunks held back by ``delay`` or ``jitter``."""
    lost: int = 0
    """Chunks delayed by a simulated retransmission."""
    resets: int = 0
    blackholes: int = 0
    stalls: int = 0
    """Blackouts: periods in which the proxy forwarded nothing at all."""
    bytes_up: int = 0
    """Bytes forwarded from clients to the target."""
    bytes_down: int = 0
    """Bytes forwarded from the target to clients."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @property
    def injected(self) -> int:
        """Faults that change what or when bytes arrive, all kinds together."""
        return (
            self.splits
            + self.coalesced
            + self.lost
            + self.resets
            + self.blackholes
            + self.stalls
        )
