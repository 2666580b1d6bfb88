"""Count the Python memory an idle WebSocket connection takes in the gateway.

The script runs a gateway and its HTTP listener in this process, with a stub
logic layer that accepts every Connect, and opens ``--connections``
authenticated connections from a child process: WebSocket ones, or TCP ones
with ``--transport tcp`` for comparison. tracemalloc compares snapshots
taken before and after the connections open, and the script prints the
bytes per connection, in total and for the source lines (or files) that
allocated most. The logic layer, the store and the routing table are left
out, so the figure is the gateway's share of a connection: the transport,
the session and the gateway's entries for it.

Run from the repository root::

    .venv/bin/python benchmarks/ws_memory.py --connections 400 --transport ws
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import subprocess
import sys
import tracemalloc

from fastapi import FastAPI, WebSocket

from switchboard.api.listener import HttpServer
from switchboard.bus.base import Action, Inbound, Outbound
from switchboard.bus.memory import InProcessBus
from switchboard.config import Settings
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.tcp import start_tcp_server
from switchboard.ids import DeviceId, UserId
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType, encode

CLIENT = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main(kind, address, count, connect_frame):
    clients = []
    for _ in range(count):
        if kind == "ws":
            websocket = await connect(address, compression=None, ping_interval=None)
            await websocket.send(connect_frame)
            await websocket.recv()
            clients.append(websocket)
        else:
            host, port = address.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(connect_frame)
            await reader.read(100)
            clients.append(writer)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

kind, address, count, frame = sys.argv[1:5]
asyncio.run(main(kind, address, int(count), bytes.fromhex(frame)))
"""


def stub_logic(bus: InProcessBus) -> None:
    """Accept every Connect as user 7."""

    async def accept(item: Inbound) -> None:
        if item.frame_type == FrameType.CONNECT:
            bus.publish_outbound(
                Outbound(
                    item.endpoint,
                    encode(pb.Connected(user_id=7, heartbeat=30)),
                    Action.ACCEPT,
                    user_id=UserId(7),
                    device=DeviceId("d"),
                    heartbeat=30,
                )
            )

    bus.subscribe_inbound(accept)


async def start_listener(gateway: Gateway, settings: Settings, transport: str) -> str:
    """Start the listener for ``transport``; return the address clients use."""
    if transport == "tcp":
        server = await start_tcp_server(gateway, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"
    app = FastAPI()
    try:
        http = HttpServer(app, settings, gateway)  # type: ignore[call-arg]
    except TypeError:
        # Before the gateway served /v1/ws itself: the ASGI route.
        from switchboard.gateway.websocket import (  # type: ignore[attr-defined]
            serve_websocket,
        )

        @app.websocket("/v1/ws")
        async def websocket(websocket: WebSocket) -> None:
            await serve_websocket(gateway, websocket)

        http = HttpServer(app, settings)
    port = await http.start()
    return f"ws://127.0.0.1:{port}/v1/ws"


async def measure(count: int, transport: str, top: int, group: str) -> None:
    settings = Settings(
        http_host="127.0.0.1", http_port=0, max_connections_per_ip=0, frame_rate=0
    )
    bus = InProcessBus()
    gateway = Gateway("mem", settings, bus)
    gateway.start()
    stub_logic(bus)
    address = await start_listener(gateway, settings, transport)
    connect_frame = encode(pb.Connect(version=1, token="t", device="d")).hex()

    # One connection first, so that one-time allocations (imports, caches,
    # the first handshake's lazy set-up) fall before the first snapshot.
    await run_clients(transport, address, 1, connect_frame, settle=0.5)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    child = await start_clients(transport, address, count, connect_frame)
    await asyncio.sleep(2)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert child.stdin is not None
    child.stdin.close()
    await child.wait()

    stats = after.compare_to(before, group)
    total = sum(stat.size_diff for stat in stats)
    print(f"python {platform.python_version()}, {transport}, {count} connections")
    print(f"{total / count:,.0f} bytes per connection")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = frame.filename if group == "filename" else str(frame)
        print(f"{stat.size_diff / count:8,.0f}  {where}")


async def start_clients(
    transport: str, address: str, count: int, connect_frame: str
) -> asyncio.subprocess.Process:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        transport,
        address,
        str(count),
        connect_frame,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await child.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"the client process failed: {line!r}")
    return child


async def run_clients(
    transport: str, address: str, count: int, connect_frame: str, settle: float
) -> None:
    child = await start_clients(transport, address, count, connect_frame)
    assert child.stdin is not None
    child.stdin.close()
    await child.wait()
    await asyncio.sleep(settle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--transport", choices=("ws", "tcp"), default="ws")
    parser.add_argument(
        "--top", type=int, default=15, help="source lines to list (default: 15)"
    )
    parser.add_argument(
        "--group",
        choices=("lineno", "filename"),
        default="lineno",
        help="sum the bytes per source line or per file (default: lineno)",
    )
    args = parser.parse_args()
    asyncio.run(measure(args.connections, args.transport, args.top, args.group))


if __name__ == "__main__":
    main()
