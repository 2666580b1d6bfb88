"""Many lightweight protocol clients for cluster tests, in-process or in a child.

A :class:`SwarmClient` is one device on one TCP connection, built on the
sans-IO ``switchboard.protocol.Connection``. It keeps what a real client
keeps for reliability and nothing else: its inbox by sequence number (so a
reconnect syncs from its contiguous head), and an outbox of Sends without a
SendAck (resent with the same client id after each reconnect). When the
server sends Reconnect it waits the given delay, asks the dispatcher for
gateways (``GET /v1/gateways``) and connects to the first TCP one. It
records when it was told and when it was connected again, in
``time.monotonic()`` seconds, which are comparable across processes.

``python -m tests.support.swarm`` runs a :class:`Swarm` in a child process,
so that a test can spread thousands of clients over more cores. The child
reads one JSON configuration line on stdin, then the commands ``start``
(senders begin sending) and ``stop`` (senders stop, the swarm waits until
every Send is acknowledged and delivered, then writes its results). It
writes one JSON object per line on stdout: ``{"event": "ready"}``,
``{"event": "reconnected"}`` once every client that was told to reconnect
is connected again, and ``{"event": "results", ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from switchboard.errors import ProtocolError
from switchboard.protocol import pb
from switchboard.protocol.connection import Connection, FrameReceived, Role
from switchboard.protocol.frames import PROTOCOL_VERSION, FrameType

CONNECT_TIMEOUT_S = 20.0
RETRY_DELAY_S = 0.2
"""Pause before another connection attempt after a failed one."""
HEARTBEAT_S = 600
"""Heartbeat interval requested in Connect: the server's maximum by default,
so that test clients need send no heartbeats."""


@dataclass(frozen=True, slots=True)
class Device:
    """A token bound to one device of one user."""

    user_id: int
    device: str
    token: str


@dataclass(slots=True)
class Entry:
    """An inbox entry as the client stores it."""

    message_id: int
    sender: int
    body: str


class _Link(asyncio.Protocol):
    """One TCP connection of a SwarmClient; frames of an old link are ignored."""

    def __init__(self, client: SwarmClient) -> None:
        loop = asyncio.get_running_loop()
        self.client = client
        self.protocol = Connection(Role.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.connected: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[float] = loop.create_future()
        """Result: the delay a Reconnect frame asked for, or -1 without one."""
        self.sync_in_flight = False

    @property
    def is_open(self) -> bool:
        return (
            self.connected.done()
            and self.connected.exception() is None
            and not self.lost.done()
        )

    def write(self, message: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.protocol.send(message))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("connection closed"))
            self.connected.exception()
        if not self.lost.done():
            self.lost.set_result(-1.0)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.protocol.receive_data(data)
        except ProtocolError as exc:
            self.client.errors.append(f"protocol error: {exc}")
            if self.transport is not None:
                self.transport.abort()
            return
        for event in events:
            if isinstance(event, FrameReceived) and self.client.link is self:
                self.client.on_frame(self, event)


class SwarmClient:
    """One device's connection, reconnected by :meth:`run` until :meth:`close`."""

    def __init__(self, device: Device, dispatcher: httpx.AsyncClient) -> None:
        self.device = device
        self.dispatcher = dispatcher
        self.inbox: dict[int, Entry] = {}
        """Entries by sequence number."""
        self.head = 0
        """Highest sequence up to which the inbox has every entry."""
        self.repeated = 0
        """Entries received again for a sequence the inbox held: harmless
        overlap of a push and a sync page."""
        self.outbox: dict[int, str] = {}
        """Bodies of Sends without a SendAck, by client id."""
        self.acked: dict[int, int] = {}
        """Message id of every acknowledged Send, by client id."""
        self.next_client_id = 1
        self.told_at: list[float] = []
        """When each Reconnect frame arrived."""
        self.due_at: list[float] = []
        """When each reconnect was due: a Reconnect frame's arrival plus its
        delay."""
        self.connected_at: list[float] = []
        """When each Connected arrived, the first connection included."""
        self.addresses: list[str] = []
        """Gateway address of each connection, in order."""
        self.unexpected_losses = 0
        """Connections lost without a Reconnect frame."""
        self.errors: list[str] = []
        self.link: _Link | None = None
        self._closing = False

    # Connecting.

    async def run(self, first_address: str, *, lost_delay: float = 0.5) -> None:
        """Connect to ``first_address``, then keep the client connected."""
        await self._connect_retrying(first_address)
        await self.keep_connected(lost_delay=lost_delay)

    async def keep_connected(self, *, lost_delay: float = 0.5) -> None:
        """Reconnect through the dispatcher whenever the link drops.

        A Reconnect frame's delay applies; a connection lost without one is
        retried after ``lost_delay`` seconds.
        """
        while not self._closing:
            await self.wait_lost(lost_delay)
            if self._closing:
                return
            await self._connect_retrying(await self.listed_gateway())

    async def _connect_retrying(self, address: str) -> None:
        while not self._closing:
            try:
                await self.connect(address)
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.errors.append(f"connect to {address} failed: {exc!r}")
                await asyncio.sleep(RETRY_DELAY_S)
                address = await self.listed_gateway()
            else:
                return

    async def wait_lost(self, lost_delay: float) -> None:
        """Wait until the link drops, then for the delay the server asked for."""
        assert self.link is not None
        delay = await self.link.lost
        if delay < 0:
            self.unexpected_losses += 1
            delay = lost_delay
        await asyncio.sleep(delay)

    async def listed_gateway(self) -> str:
        """Return the first TCP gateway the dispatcher lists, asking until one is."""
        while True:
            with contextlib.suppress(httpx.HTTPError):
                response = await self.dispatcher.get("/v1/gateways")
                for gateway in response.json()["gateways"]:
                    if gateway["transport"] == "tcp":
                        return cast(str, gateway["address"])
            await asyncio.sleep(RETRY_DELAY_S)

    async def connect(self, address: str) -> None:
        """Open a connection to ``address``, authenticate and resend the outbox."""
        loop = asyncio.get_running_loop()
        host, port = address.rsplit(":", 1)
        link = self.link = _Link(self)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.create_connection(lambda: link, host, int(port))
                link.write(
                    pb.Connect(
                        version=PROTOCOL_VERSION,
                        token=self.device.token,
                        device=self.device.device,
                        platform=pb.PLATFORM_CLI,
                        last_seq=self.head,
                        heartbeat=HEARTBEAT_S,
                    )
                )
                await link.connected
        except BaseException:
            if link.transport is not None:
                link.transport.abort()
            raise
        self.connected_at.append(time.monotonic())
        self.addresses.append(address)
        for client_id, body in sorted(self.outbox.items()):
            self._write_send(link, client_id, body)

    def close(self) -> None:
        self._closing = True
        if self.link is not None and self.link.transport is not None:
            self.link.transport.close()

    @property
    def is_open(self) -> bool:
        return self.link is not None and self.link.is_open

    # Sending.

    def send(self, to: int, body: str) -> None:
        """Queue a Send to user ``to``; it goes out now if the link is open."""
        client_id = self.next_client_id
        self.next_client_id += 1
        self.outbox[client_id] = f"{to}|{body}"
        if self.link is not None and self.link.is_open:
            self._write_send(self.link, client_id, self.outbox[client_id])

    def _write_send(self, link: _Link, client_id: int, entry: str) -> None:
        to, _, body = entry.partition("|")
        link.write(pb.Send(to=int(to), client_id=client_id, body=body.encode()))

    # Frames from the server.

    def on_frame(self, link: _Link, event: FrameReceived) -> None:
        message = event.message
        if event.type is FrameType.MESSAGE:
            assert isinstance(message, pb.Message)
            self._add(link, [message])
        elif event.type is FrameType.SEND_ACK:
            assert isinstance(message, pb.SendAck)
            entry = self.outbox.pop(message.client_id, None)
            self.acked[message.client_id] = message.id
            if entry is not None:
                body = entry.partition("|")[2]
                self._add_entry(message.seq, message.id, self.device.user_id, body)
        elif event.type is FrameType.SYNC_RESPONSE:
            assert isinstance(message, pb.SyncResponse)
            link.sync_in_flight = False
            self._add(link, message.messages, has_more=message.has_more)
        elif event.type is FrameType.CONNECTED:
            assert isinstance(message, pb.Connected)
            if not link.connected.done():
                link.connected.set_result(None)
            self._add(link, message.sync.messages, has_more=message.sync.has_more)
        elif event.type is FrameType.RECONNECT:
            assert isinstance(message, pb.Reconnect)
            self.told_at.append(time.monotonic())
            self.due_at.append(self.told_at[-1] + message.delay / 1000)
            if not link.lost.done():
                link.lost.set_result(message.delay / 1000)
        elif event.type is FrameType.ERROR:
            assert isinstance(message, pb.Error)
            self.errors.append(f"error {message.code}: {message.reason}")

    # The inbox.

    def _add(
        self, link: _Link, messages: Iterable[pb.Message], *, has_more: bool = False
    ) -> None:
        top = 0
        for message in messages:
            self._add_entry(
                message.seq, message.id, message.sender, message.body.decode()
            )
            top = max(top, message.seq)
        if has_more or top > self.head:
            self._sync_gap(link, has_more=has_more)

    def _add_entry(self, seq: int, message_id: int, sender: int, body: str) -> None:
        if seq in self.inbox:
            self.repeated += 1
            return
        self.inbox[seq] = Entry(message_id, sender, body)
        while self.head + 1 in self.inbox:
            self.head += 1

    def _sync_gap(self, link: _Link, *, has_more: bool) -> None:
        """Ask for the entries after the contiguous head, one page at a time."""
        missing = has_more or any(seq > self.head for seq in self.inbox)
        if missing and not link.sync_in_flight and link.is_open:
            link.sync_in_flight = True
            link.write(pb.SyncRequest(after_seq=self.head))


@dataclass(slots=True)
class SwarmConfig:
    """What a child process runs; see the module docstring."""

    dispatcher_url: str
    first_address: str
    """Gateway every client connects to first, ``host:port``."""
    devices: list[Device]
    pairs: list[tuple[int, int]] = field(default_factory=list)
    """(sender index, recipient index) into ``devices``."""
    send_interval: float = 0.1
    """Seconds between two Sends of one sender."""
    connect_concurrency: int = 100

    @classmethod
    def from_json(cls, text: str) -> SwarmConfig:
        data = json.loads(text)
        return cls(
            dispatcher_url=data["dispatcher_url"],
            first_address=data["first_address"],
            devices=[Device(*device) for device in data["devices"]],
            pairs=[(int(a), int(b)) for a, b in data["pairs"]],
            send_interval=float(data["send_interval"]),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "dispatcher_url": self.dispatcher_url,
                "first_address": self.first_address,
                "devices": [[d.user_id, d.device, d.token] for d in self.devices],
                "pairs": self.pairs,
                "send_interval": self.send_interval,
            }
        )


class Swarm:
    """The clients of one configuration, their senders and their results."""

    def __init__(self, config: SwarmConfig, dispatcher: httpx.AsyncClient) -> None:
        self.config = config
        self.clients = [SwarmClient(device, dispatcher) for device in config.devices]
        self._runs: list[asyncio.Task[None]] = []
        self._sending = asyncio.Event()

    async def connect_all(self) -> None:
        """Connect every client to the first address and keep them connected."""
        limit = asyncio.Semaphore(self.config.connect_concurrency)
        address = self.config.first_address

        async def first(client: SwarmClient) -> None:
            async with limit:
                await client.connect(address)

        await asyncio.gather(*(first(client) for client in self.clients))
        self._runs = [
            asyncio.create_task(client.keep_connected()) for client in self.clients
        ]

    async def send_until_stopped(self, stop: asyncio.Event) -> None:
        """Send from every pair each ``send_interval`` until ``stop`` is set."""
        number = 0
        while not stop.is_set():
            for sender, recipient in self.config.pairs:
                to = self.clients[recipient].device.user_id
                self.clients[sender].send(to, f"{sender}:{number}")
            number += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.send_interval):
                    await stop.wait()

    def reconnected(self) -> bool:
        """Return whether every client sent a Reconnect frame is connected again."""
        return all(
            len(client.connected_at) > len(client.told_at) and client.is_open
            for client in self.clients
        )

    def progress(self) -> dict[str, Any]:
        """Return counts that show how far the clients got, for failure messages."""
        clients = self.clients
        return {
            "told": sum(1 for c in clients if c.told_at),
            "open": sum(1 for c in clients if c.is_open),
            "reconnected": sum(1 for c in clients if len(c.connected_at) > 1),
            "unexpected_losses": sum(c.unexpected_losses for c in clients),
            "errors": [e for c in clients for e in c.errors][:10],
        }

    def settled(self) -> bool:
        """Return whether every Send is acknowledged and in its recipient's inbox."""
        for sender, recipient in self.config.pairs:
            source, target = self.clients[sender], self.clients[recipient]
            if source.outbox:
                return False
            received = {entry.message_id for entry in target.inbox.values()}
            if not set(source.acked.values()) <= received:
                return False
        return True

    def results(self) -> dict[str, Any]:
        """Return what the test checks, as JSON-ready values."""
        return {
            "clients": [
                {
                    "user_id": client.device.user_id,
                    "told_at": client.told_at,
                    "due_at": client.due_at,
                    "connected_at": client.connected_at,
                    "addresses": client.addresses,
                    "unexpected_losses": client.unexpected_losses,
                    "errors": client.errors,
                    "repeated": client.repeated,
                    "outbox": len(client.outbox),
                    "acked": list(client.acked.values()),
                    "inbox": [
                        [seq, entry.message_id, entry.sender, entry.body]
                        for seq, entry in sorted(client.inbox.items())
                    ],
                }
                for client in self.clients
            ],
            "pairs": self.config.pairs,
        }

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for run in self._runs:
            run.cancel()


async def wait_until(condition: Any, seconds: float, step: float = 0.05) -> bool:
    """Return True once ``condition()`` is true, False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _read_line(reader: asyncio.StreamReader) -> str:
    return (await reader.readline()).decode().strip()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    config = SwarmConfig.from_json(await _read_line(reader))
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(
        base_url=config.dispatcher_url, timeout=10, limits=limits
    ) as dispatcher:
        swarm = Swarm(config, dispatcher)
        await swarm.connect_all()
        _emit("ready", connected=len(swarm.clients))

        assert await _read_line(reader) == "start"
        stop = asyncio.Event()
        sending = asyncio.create_task(swarm.send_until_stopped(stop))
        told = asyncio.create_task(
            wait_until(lambda: all(c.told_at for c in swarm.clients), 30)
        )
        command = asyncio.create_task(_read_line(reader))
        await asyncio.wait([told, command], return_when=asyncio.FIRST_COMPLETED)
        if told.done():
            await wait_until(swarm.reconnected, 60)
            _emit("reconnected", **swarm.progress())

        assert await command == "stop"
        stop.set()
        await sending
        settled = await wait_until(swarm.settled, 60)
        _emit("results", settled=settled, **swarm.results())
        swarm.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main())
    else:
        uvloop.run(_main())
