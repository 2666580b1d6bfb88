"""Reliability checks: a fault-injecting TCP proxy and a delivery checker.

:class:`ChaosProxy` sits between SDK clients and a gateway's TCP listener and
splits, coalesces, delays, resets and black-holes their connections.
"""

from switchboard.chaos.faults import FaultCounts, FaultSettings
from switchboard.chaos.proxy import ChaosProxy

__all__ = ["ChaosProxy", "FaultCounts", "FaultSettings"]
