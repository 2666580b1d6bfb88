"""An asyncio TCP proxy that injects network faults between clients and a gateway.

Each accepted client connection gets its own connection to the target and two
pipes, one per direction. A pipe's reader task reads chunks, decides the
faults of each chunk and queues it with the time it is due. Its writer task
writes chunks in order when they are due, joining or cutting them on the way.
Nothing here parses frames: the proxy moves bytes, so what it breaks is the
byte stream that the gateway's and the SDK's decoders must survive.

Faults, decided per chunk from :class:`~switchboard.chaos.faults.FaultSettings`:

* split: the chunk leaves as several TCP segments cut at random bytes;
* coalesce: chunks that arrived close together leave in one write;
* delay, jitter and loss: the chunk leaves later, never before an earlier one;
* reset: both ends get a TCP RST;
* black hole: nothing more is forwarded and neither end is closed.

:meth:`ChaosProxy.stall` and :meth:`ChaosProxy.resume` stop and restart all
forwarding at once (a network blackout): connections stay open, bytes wait
in the socket buffers, and new connections wait before reaching the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import random
import socket
import struct
from collections import deque

from switchboard.chaos.faults import FaultCounts, FaultSettings

__all__ = ["ChaosProxy"]

logger = logging.getLogger("switchboard.chaos")

READ_SIZE = 64 * 1024
SPLIT_GAP = 0.001
"""Pause between the pieces of a split chunk, so that each leaves on its own."""
MAX_QUEUED = 1024 * 1024
"""Bytes a pipe holds before its reader stops reading, for backpressure."""
CONNECT_TIMEOUT = 5.0
"""Time to connect to the target before the client connection is closed."""


class _State(enum.Enum):
    OPEN = "open"
    BLACKHOLED = "blackholed"
    CLOSED = "closed"


class ChaosProxy:
    """Forward TCP connections from ``host:port`` to ``target``, with faults.

    ``port`` 0 picks a free port; :attr:`address` tells which after
    :meth:`start`. The target may be down: a client connection whose target
    refuses is closed at once, as a gateway that is down would.
    """

    def __init__(
        self,
        target: tuple[str, int],
        settings: FaultSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.target = target
        self.settings = settings or FaultSettings()
        self.settings.validate()
        self.counts = FaultCounts()
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._links: dict[int, _Link] = {}
        self._numbers = itertools.count(1)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refuse_new = False

    @property
    def address(self) -> tuple[str, int]:
        """The host and port clients connect to."""
        return self._host, self._port

    @property
    def address_text(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def open_links(self) -> int:
        """Client connections currently held, black-holed ones included."""
        return len(self._links)

    @property
    def flowing(self) -> bool:
        """False during a stall."""
        return self._flowing.is_set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, limit=READ_SIZE
        )
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info(
            "chaos proxy listening on %s, forwarding to %s:%d, seed %d",
            self.address_text,
            *self.target,
            self.settings.seed,
        )

    async def close(self) -> None:
        """Stop listening and drop every connection at once."""
        if self._server is not None:
            self._server.close()
        for link in list(self._links.values()):
            link.abort()
        self._flowing.set()
        if self._server is not None:
            await self._server.wait_closed()
        logger.info("chaos proxy stopped: %s", self.counts.as_dict())

    def reset_all(self) -> int:
        """Reset every open connection now; return how many."""
        links = [link for link in self._links.values() if link.state is _State.OPEN]
        for link in links:
            link.reset()
        return len(links)

    def blackhole_all(self) -> int:
        """Black-hole every open connection now; return how many."""
        links = [link for link in self._links.values() if link.state is _State.OPEN]
        for link in links:
            link.blackhole()
        return len(links)

    def stall(self, *, refuse_new: bool = False) -> None:
        """Stop forwarding on every connection until :meth:`resume`.

        New connections wait too, and go through once the stall ends, as if
        the connect attempt was retried right then. With ``refuse_new`` they
        are reset at once instead, so connect attempts fail fast.
        """
        self._refuse_new = refuse_new
        if self._flowing.is_set():
            self._flowing.clear()
            self.counts.stalls += 1
            logger.info("chaos proxy stalled")

    def resume(self) -> None:
        """Forward again after :meth:`stall`."""
        if not self._flowing.is_set():
            self._flowing.set()
            logger.info("chaos proxy resumed")

    async def wait_flowing(self) -> None:
        await self._flowing.wait()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        number = next(self._numbers)
        self.counts.connections += 1
        if self._refuse_new and not self._flowing.is_set():
            self.counts.refused += 1
            _set_linger_zero(writer)
            writer.transport.abort()
            return
        link = _Link(self, number, reader, writer)
        self._links[number] = link
        try:
            await link.run()
        finally:
            self._links.pop(number, None)


class _Link:
    """One proxied connection: the client side, the target side, two pipes."""

    def __init__(
        self,
        proxy: ChaosProxy,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.number = number
        self.state = _State.OPEN
        self.client = (reader, writer)
        self.target: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.done = asyncio.Event()
        self.gone: set[str] = set()
        """Sides ("client", "target") that closed while black-holed."""
        self._tasks: list[asyncio.Task[None]] = []
        self._hold: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        proxy = self.proxy
        await proxy.wait_flowing()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                self.target = await asyncio.open_connection(
                    *proxy.target, limit=READ_SIZE
                )
        except (OSError, TimeoutError) as exc:
            proxy.counts.refused += 1
            logger.debug("link %d: target unreachable: %s", self.number, exc)
            self.abort()
            return
        if self.state is not _State.OPEN:
            self.abort()
            return
        for _, writer in (self.client, self.target):
            _set_nodelay(writer)

        seed = f"{proxy.settings.seed}/{self.number}"
        up = _Pipe(self, "client", self.client, self.target[1], seed + "/up")
        down = _Pipe(self, "target", self.target, self.client[1], seed + "/down")
        for pipe in (up, down):
            self._tasks += [
                asyncio.create_task(pipe.read_loop()),
                asyncio.create_task(pipe.write_loop()),
            ]
        try:
            await self.done.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def writers(self) -> list[asyncio.StreamWriter]:
        sides = [self.client] if self.target is None else [self.client, self.target]
        return [writer for _, writer in sides]

    def close(self) -> None:
        """Close both sides gracefully, after the bytes already written."""
        if self.state is _State.CLOSED:
            return
        self.state = _State.CLOSED
        for writer in self.writers():
            writer.close()
        self._finish()

    def abort(self) -> None:
        """Drop both sides at once."""
        if self.state is _State.CLOSED:
            return
        self.state = _State.CLOSED
        for writer in self.writers():
            writer.transport.abort()
        self._finish()

    def reset(self) -> None:
        """Send a TCP RST to both sides."""
        if self.state is _State.CLOSED:
            return
        self.proxy.counts.resets += 1
        logger.debug("link %d: reset", self.number)
        for writer in self.writers():
            _set_linger_zero(writer)
        self.abort()

    def blackhole(self) -> None:
        """Forward nothing more and close neither side."""
        if self.state is not _State.OPEN:
            return
        self.state = _State.BLACKHOLED
        self.proxy.counts.blackholes += 1
        logger.debug("link %d: black-holed", self.number)
        loop = asyncio.get_running_loop()
        self._hold = loop.call_later(self.proxy.settings.blackhole_hold, self.abort)

    def side_gone(self, side: str, writer: asyncio.StreamWriter) -> None:
        """Record that ``side`` closed a black-holed link; close it too."""
        self.gone.add(side)
        writer.transport.abort()
        if len(self.gone) == 2:
            self.abort()

    def _finish(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
        self.done.set()


class _Pipe:
    """One direction of a link: bytes read on one side, written to the other."""

    def __init__(
        self,
        link: _Link,
        side: str,
        source: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        writer: asyncio.StreamWriter,
        seed: str,
    ) -> None:
        self.link = link
        self.side = side
        self.upstream = side == "client"
        self.reader, self.source_writer = source
        self.writer = writer
        # Separate generators for the two tasks, so that the order in which
        # the tasks run does not change which fault a chunk gets.
        self.read_rng = random.Random(seed + "/read")
        self.write_rng = random.Random(seed + "/write")
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.queued = 0
        self.changed = asyncio.Event()
        self.last_due = 0.0

    async def read_loop(self) -> None:
        link, proxy = self.link, self.link.proxy
        while True:
            await self._wait_for_space()
            await proxy.wait_flowing()
            try:
                data = await self.reader.read(READ_SIZE)
            except OSError:
                data = b""
            if link.state is _State.BLACKHOLED:
                if not data:
                    link.side_gone(self.side, self.source_writer)
                    return
                continue
            if not data:
                self._put(asyncio.get_running_loop().time(), None)
                return
            if self._roll_link_fault():
                return
            self._put(self._due_time(), data)

    async def _wait_for_space(self) -> None:
        while self.queued > MAX_QUEUED:
            self.changed.clear()
            await self.changed.wait()

    def _roll_link_fault(self) -> bool:
        settings, rng = self.link.proxy.settings, self.read_rng
        if settings.reset and rng.random() < settings.reset:
            self.link.reset()
            return True
        if settings.blackhole and rng.random() < settings.blackhole:
            self.link.blackhole()
        return False

    def _due_time(self) -> float:
        settings, rng = self.link.proxy.settings, self.read_rng
        counts = self.link.proxy.counts
        extra = settings.delay
        if settings.jitter:
            extra += rng.uniform(0.0, settings.jitter)
        if settings.loss and rng.random() < settings.loss:
            extra += settings.retransmit_delay
            counts.lost += 1
        if extra > 0:
            counts.delayed += 1
        due = max(asyncio.get_running_loop().time() + extra, self.last_due)
        self.last_due = due
        return due

    def _put(self, due: float, data: bytes | None) -> None:
        self.queue.append((due, data))
        self.queued += len(data or b"")
        self.changed.set()

    def _take(self) -> bytes | None:
        _, data = self.queue.popleft()
        self.queued -= len(data or b"")
        self.changed.set()
        return data

    async def write_loop(self) -> None:
        link, proxy = self.link, self.link.proxy
        loop = asyncio.get_running_loop()
        settings = proxy.settings
        while True:
            while not self.queue:
                self.changed.clear()
                await self.changed.wait()
            wait = self.queue[0][0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await proxy.wait_flowing()
            if link.state is not _State.OPEN:
                self.queue.clear()
                self.queued = 0
                continue

            if settings.coalesce and self.write_rng.random() < settings.coalesce:
                await asyncio.sleep(settings.coalesce_wait)
            data = self._take_due(loop.time())
            if data is None:
                link.close()
                return
            try:
                await self._write(data)
            except (OSError, RuntimeError):
                # RuntimeError: a write after the transport was closed.
                link.abort()
                return

    def _take_due(self, now: float) -> bytes | None:
        """Take the first chunk and every due chunk after it, joined."""
        first = self._take()
        if first is None:
            return None
        parts = [first]
        while self.queue and self.queue[0][0] <= now and self.queue[0][1] is not None:
            data = self._take()
            assert data is not None
            parts.append(data)
        if len(parts) > 1:
            self.link.proxy.counts.coalesced += 1
        return b"".join(parts)

    async def _write(self, data: bytes) -> None:
        counts, settings = self.link.proxy.counts, self.link.proxy.settings
        pieces = [data]
        split = settings.split and self.write_rng.random() < settings.split
        if split and len(data) > 1:
            pieces = _cut(data, self.write_rng)
            counts.splits += 1
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(SPLIT_GAP)
            self.writer.write(piece)
            await self.writer.drain()
        if self.upstream:
            counts.bytes_up += len(data)
        else:
            counts.bytes_down += len(data)


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut ``data`` at one to three distinct random positions."""
    count = min(len(data) - 1, rng.randint(1, 3))
    cuts = sorted(rng.sample(range(1, len(data)), count))
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def _set_nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _set_linger_zero(writer: asyncio.StreamWriter) -> None:
    # SO_LINGER on with a timeout of 0 makes close() send RST, not FIN.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            linger = struct.pack("ii", 1, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
