"""Measure the CPU cost of one small write to each of many TCP connections.

A group push reaches each online member with one ``transport.write`` of the
same bytes, and so one ``send`` system call per connection. This script
measures that floor without any of Switchboard's code. A uvloop server
accepts ``--connections`` loopback connections from a child process that
reads and discards everything. It then writes a ``--size``-byte payload to
every connection, ``--rounds`` times, and pauses between rounds so that the
child catches up. It prints the server process's CPU time (user plus
system, all threads) per write, the median over ``--runs`` runs.

On loopback the sender's ``send`` also runs the receiving side of TCP, so
the figure includes the kernel's work for both ends, as the group fan-out
benchmark's does.

Run from the repository root::

    .venv/bin/python benchmarks/socket_write_floor.py --connections 1000
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from importlib.metadata import version
from typing import cast

import uvloop

READER = """
import socket, sys, selectors
count, port = int(sys.argv[1]), int(sys.argv[2])
selector = selectors.DefaultSelector()
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        if not key.fileobj.recv(65536):
            sys.exit(0)
"""


class Sink(asyncio.Protocol):
    """Server side of one connection: it only writes."""

    def __init__(
        self,
        transports: list[asyncio.Transport],
        expected_count: int,
        all_in: asyncio.Event,
    ) -> None:
        self._transports = transports
        self._expected_count = expected_count
        self._all_in = all_in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transports.append(cast(asyncio.Transport, transport))
        if len(self._transports) >= self._expected_count:
            self._all_in.set()


async def run_once(connections: int, rounds: int, size: int) -> float:
    """Return CPU microseconds per write over ``rounds`` rounds."""
    transports: list[asyncio.Transport] = []
    all_in = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Sink(transports, connections, all_in), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        READER,
        str(connections),
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None
        await reader.stdout.readline()
        await all_in.wait()

        payload = b"x" * size
        cpu = 0.0
        for _ in range(rounds):
            started = time.process_time()
            for transport in transports:
                transport.write(payload)
            cpu += time.process_time() - started
            await asyncio.sleep(0.01)
        return cpu * 1e6 / (rounds * connections)
    finally:
        for transport in transports:
            transport.close()
        server.close()
        await server.wait_closed()
        await asyncio.wait_for(reader.wait(), 10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--size", type=int, default=40, help="bytes per write")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    results = [
        await run_once(args.connections, args.rounds, args.size)
        for _ in range(args.runs)
    ]
    print(
        f"Python {platform.python_version()}, uvloop {version('uvloop')},"
        f" {args.connections} connections, {args.size}-byte writes,"
        f" {args.rounds} rounds, median of {args.runs} runs:"
        f" {statistics.median(results):.2f} µs of CPU per write"
    )


if __name__ == "__main__":
    uvloop.run(main())
