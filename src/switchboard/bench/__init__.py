"""``switchboard bench``: measure a Switchboard server under load.

Scenarios, one module each:

- ``wire``: bytes on the socket for connecting, a 1:1 message and a heartbeat.
- ``direct``: 1:1 message throughput, server CPU per message and latency.
- ``idle``: server memory per idle authenticated connection.
- ``heartbeat``: server CPU spent on heartbeats of many idle connections.
- ``fanout``: server CPU per recipient of a group message, and delivery time.
- ``storm``: many clients reconnecting at once, and latency meanwhile.

``options`` builds the command line with argparse alone, so the CLI can
register the subcommand without loading the load generator; ``runner``
runs a scenario, and ``report`` and ``charts`` write its results.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["run"]


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the scenario that ``args`` selects; return the exit status."""
    from switchboard.bench.runner import run_scenario

    return run_scenario(args, argv)
