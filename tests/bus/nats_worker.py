"""A logic worker on the NATS bus that handles frames but never settles them.

Run by test_nats_bus.py to stand for a logic worker that crashes after it
handled frames and before their work was stored: it prints one line per
frame it handles (the frame's payload in hex), acknowledges none, and runs
until it is killed.

Usage: python nats_worker.py NATS_URL NAMESPACE LEASE_TTL_S
"""

from __future__ import annotations

import asyncio
import sys

from switchboard.bus.base import Inbound
from switchboard.bus.nats import NatsBus


async def run(url: str, namespace: str, lease_ttl_s: float) -> None:
    bus = await NatsBus.connect(url, namespace, lease_ttl_s=lease_ttl_s)
    never = asyncio.Event()

    async def handle(item: Inbound) -> None:
        print(item.payload.hex(), flush=True)

    async def settled() -> None:
        await never.wait()

    bus.subscribe_inbound(handle, settled)
    print("ready", flush=True)
    await never.wait()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2], float(sys.argv[3])))
