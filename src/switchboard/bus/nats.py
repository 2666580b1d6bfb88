"""NATS JetStream bus between the gateways and the logic workers of a cluster.

Frames from clients (inbound) are durable. A gateway publishes each frame to
the JetStream stream ``<namespace>_inbound`` and waits for the stream to
store it. A publish that times out is retried with the same message id, and
the stream drops a copy it has seen within its duplicate window (2 minutes).
A logic worker acknowledges frames only once their work is stored
(``Bus.subscribe_inbound``'s ``settled``), so frames that a crashed worker
took are handled again by the partition's next owner. Delivery is therefore
at least once, and the logic layer deduplicates Sends by (sender, device,
client message id).

The stream is split into ``partitions`` subjects ``<namespace>.in.<n>``, each
consumed by one logic worker at a time in order (``nats_partitions.py``).
Frames of an authenticated connection go to partition ``user_id % n``, so one
worker handles every frame of a user, from all devices, in order. A Connect,
whose user is unknown until the logic layer authenticates it, goes to the
partition of a hash of its gateway and connection number. The gateway holds
the connection's later frames until Connected arrives, so a connection's
frames still reach the logic layer in order.

NOTE: a Connect may therefore reach another worker than the user's frames,
and it does not wait for the device's Sends that worker is still storing.
Connected then reports a lower ``last_client_id``, the client resends those
messages, and the user's worker answers the resends as duplicates.

Deliveries (outbound) use core NATS on ``<namespace>.out.<gateway>``, and
on ``<namespace>.broadcast`` for those addressed to every gateway
(``bus.base.BROADCAST``). Core NATS is at most once: a delivery published
while the gateway is disconnected from NATS is lost. The protocol recovers
each kind. A lost Message push is fetched by the client's next sync, which
runs when a later push shows a gap in sequences, and on every reconnect. A
lost SendAck leaves the message pending in the client until it reconnects
and resends it, and the logic layer answers the resend as a duplicate. A
lost Connected makes the client time out and reconnect. A lost close of a
replaced connection leaves it open, without pushes, until its heartbeat
times out.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import re
import secrets
import zlib
from collections.abc import Coroutine
from typing import Any, Final

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import NotFoundError as JsNotFoundError

from switchboard.bus.base import (
    BROADCAST,
    Action,
    Bus,
    BusUnavailable,
    Inbound,
    InboundHandler,
    Outbound,
    OutboundHandler,
    SettledHook,
)
from switchboard.bus.codec import (
    decode_outbound,
    encode_inbound,
    encode_outbound,
)
from switchboard.bus.nats_partitions import BusNames, PartitionWorker
from switchboard.errors import ErrorCode
from switchboard.logs import RateLimitedLog
from switchboard.protocol import pb
from switchboard.protocol.frames import encode

__all__ = ["BusNames", "NatsBus", "partition_of"]

logger = logging.getLogger("switchboard.bus")

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""Namespaces, gateway and worker names: one NATS subject token, also valid
in stream, consumer and bucket names."""
DEFAULT_PARTITIONS: Final = 16
MAX_OUTGOING: Final = 100_000
"""Deliveries queued for NATS before new ones are dropped (clients recover
them by sync)."""
CONNECT_TIMEOUT_S: Final = 10.0
"""Time connect() tries to reach NATS before it gives up."""
CLOSE_TIMEOUT_S: Final = 5.0
"""Time close() waits for queued deliveries to reach NATS."""
_DESCRIPTION: Final = "switchboard inbound frames; partitions={}"


def partition_of(item: Inbound, partitions: int) -> int:
    """Return the inbound partition of ``item``: by user once authenticated."""
    if item.user_id:
        return item.user_id % partitions
    key = f"{item.endpoint.connection}:{item.endpoint.gateway}".encode()
    return zlib.crc32(key) % partitions


def check_name(kind: str, name: str) -> str:
    """Return ``name``, or raise ValueError if NATS cannot use it as ``kind``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid {kind} {name!r}: use 1 to 64 of A-Z, a-z, 0-9, '_' and '-'"
        )
    return name


class NatsBus(Bus):
    """Bus over NATS: JetStream for inbound frames, core NATS for deliveries.

    Build it with :meth:`connect`. Every process of a deployment must use
    the same ``namespace`` and ``partitions``. ``worker`` names this process
    among the logic workers. ``lease_ttl_s`` is how long a crashed worker's
    partitions wait before another worker takes them over. ``batch`` is the
    number of frames a worker fetches and acknowledges at once.
    ``publish_timeout_s`` is how long a gateway retries publishing one frame
    before it gives up and closes the connection.
    """

    def __init__(
        self,
        client: NatsClient,
        names: BusNames,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        worker: str = "",
        lease_ttl_s: float = 10.0,
        batch: int = 128,
        publish_timeout_s: float = 30.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"invalid partitions {partitions}: must be at least 1")
        if lease_ttl_s <= 0:
            raise ValueError(f"invalid lease_ttl_s {lease_ttl_s}: must be positive")
        self.names = names
        self.partitions = partitions
        self._client = client
        self._js = client.jetstream()
        self._worker_name = check_name("worker name", worker or _random_name())
        self._lease_ttl_s = lease_ttl_s
        self._batch = batch
        self._publish_timeout_s = publish_timeout_s
        self._publisher = secrets.token_hex(6)
        self._sequence = itertools.count(1)
        self._worker: PartitionWorker | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._outgoing: collections.deque[tuple[str, bytes]] = collections.deque()
        self._outgoing_ready = asyncio.Event()
        self._closing = False
        self._events = _ConnectionEvents()
        self._writer = asyncio.create_task(self._write_outgoing())
        self._log = RateLimitedLog(logger)

    @classmethod
    async def connect(
        cls,
        url: str,
        namespace: str,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        worker: str = "",
        lease_ttl_s: float = 10.0,
        batch: int = 128,
        publish_timeout_s: float = 30.0,
    ) -> NatsBus:
        """Connect to NATS at ``url`` and create the stream unless it exists.

        Raises ValueError if the stream exists with another partition count,
        and BusUnavailable if the server cannot be reached.
        """
        names = BusNames(check_name("namespace", namespace))
        events = _ConnectionEvents()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                # Once connected, the client reconnects for as long as it takes.
                client = await nats.connect(
                    url,
                    name=f"switchboard-{namespace}",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=events.error,
                    disconnected_cb=events.disconnected,
                    reconnected_cb=events.reconnected,
                )
        except TimeoutError:
            raise BusUnavailable(
                f"cannot connect to NATS at {url} within {CONNECT_TIMEOUT_S:g} s;"
                " check that it runs, with JetStream enabled"
            ) from None
        bus = cls(
            client,
            names,
            partitions=partitions,
            worker=worker,
            lease_ttl_s=lease_ttl_s,
            batch=batch,
            publish_timeout_s=publish_timeout_s,
        )
        bus._events = events
        try:
            await bus._ensure_stream()
        except BaseException:
            await bus.close()
            raise
        logger.info("connected to NATS at %s, stream %s", url, names.stream)
        return bus

    async def _ensure_stream(self) -> None:
        description = _DESCRIPTION.format(self.partitions)
        try:
            info = await self._js.stream_info(self.names.stream)
        except JsNotFoundError:
            await self._js.add_stream(
                name=self.names.stream,
                description=description,
                subjects=[self.names.inbound_subjects],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
                duplicate_window=120.0,
            )
            logger.info("created stream %s", self.names.stream)
            return
        if info.config.description != description:
            raise ValueError(
                f"stream {self.names.stream} was created with"
                f" {info.config.description!r}, not {self.partitions} partitions;"
                " give every process the same partition count"
            )

    # Inbound.

    def subscribe_inbound(
        self, handler: InboundHandler, settled: SettledHook | None = None
    ) -> None:
        if self._worker is not None:
            raise RuntimeError("the logic layer is subscribed already")
        self._worker = PartitionWorker(
            self._js,
            self.names,
            self.partitions,
            self._worker_name,
            handler,
            settled,
            self._reject_failed,
            lease_ttl_s=self._lease_ttl_s,
            batch=self._batch,
        )
        self._spawn(self._worker.start())

    @property
    def owned_partitions(self) -> list[int]:
        """Partitions this process consumes now, for tests and logs."""
        return [] if self._worker is None else self._worker.owned

    async def publish_inbound(self, item: Inbound) -> None:
        """Store ``item`` in the stream; retry until ``publish_timeout_s``.

        Raises BusUnavailable when the stream has not confirmed it in time.
        """
        subject = self.names.inbound_subject(partition_of(item, self.partitions))
        data = encode_inbound(item)
        headers = {"Nats-Msg-Id": f"{self._publisher}-{next(self._sequence)}"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout_s
        delay = 0.05
        while True:
            try:
                await self._js.publish(subject, data, headers=headers)
                return
            except (NatsError, TimeoutError) as exc:
                if loop.time() + delay > deadline:
                    raise BusUnavailable(
                        f"NATS did not store a frame within"
                        f" {self._publish_timeout_s:g} s: {exc!r}"
                    ) from exc
                self._log.warning(
                    "publish", "publishing a frame failed, retrying: %r", exc
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _reject_failed(self, item: Inbound) -> None:
        # As the embedded gateway does when the logic layer raises: the
        # client gets a fatal error and reconnects.
        error = pb.Error(
            code=ErrorCode.INTERNAL_ERROR, reason="internal error", fatal=True
        )
        close = Outbound(
            item.endpoint, encode(error), Action.CLOSE, reason="internal_error"
        )
        self.publish_outbound(close)

    # Outbound.

    def subscribe_outbound(self, gateway: str, handler: OutboundHandler) -> None:
        check_name("gateway name", gateway)
        self._spawn(self._subscribe(gateway, handler))

    async def _subscribe(self, gateway: str, handler: OutboundHandler) -> None:
        async def deliver(message: Msg) -> None:
            try:
                item = decode_outbound(message.data)
            except ValueError as exc:
                logger.error("dropped an undecodable delivery: %s", exc)
                return
            try:
                handler(item)
            except Exception:
                logger.exception("delivering to %s failed", item.endpoint)

        subscriptions = [
            await self._client.subscribe(
                subject, cb=deliver, pending_msgs_limit=1_000_000
            )
            for subject in (
                self.names.outbound_subject(gateway),
                self.names.broadcast_subject,
            )
        ]
        self._subscriptions[gateway] = subscriptions

    def unsubscribe_outbound(self, gateway: str) -> None:
        for subscription in self._subscriptions.pop(gateway, []):
            self._spawn(subscription.unsubscribe())

    async def wait_subscribed(self) -> None:
        """Wait until subscriptions made so far are active on the server."""
        while self._pending:
            await asyncio.gather(*self._pending)
        await self._client.flush()

    def publish_outbound(self, item: Outbound) -> None:
        if len(self._outgoing) >= MAX_OUTGOING:
            self._log.warning(
                "outgoing",
                "dropped a delivery to %s: %d deliveries wait for NATS",
                item.endpoint,
                len(self._outgoing),
            )
            return
        gateway = item.endpoint.gateway
        if gateway == BROADCAST:
            subject = self.names.broadcast_subject
        else:
            subject = self.names.outbound_subject(gateway)
        self._outgoing.append((subject, encode_outbound(item)))
        self._outgoing_ready.set()

    async def _write_outgoing(self) -> None:
        # One writer, so deliveries leave in the order they were published.
        while True:
            await self._outgoing_ready.wait()
            self._outgoing_ready.clear()
            while self._outgoing:
                subject, data = self._outgoing.popleft()
                try:
                    await self._client.publish(subject, data)
                except NatsError as exc:
                    self._log.warning(
                        "deliver", "dropped a delivery on %s: %r", subject, exc
                    )
            if self._closing:
                return

    # Lifecycle.

    async def close(self) -> None:
        """Release partitions, send queued deliveries and disconnect."""
        if self._closing:
            return
        self._closing = True
        self._events.closing = True
        if self._worker is not None:
            await self._worker.stop()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._outgoing_ready.set()
        try:
            await asyncio.wait_for(self._writer, CLOSE_TIMEOUT_S)
        except TimeoutError:
            logger.warning("%d deliveries were not sent to NATS", len(self._outgoing))
        if not self._client.is_closed:
            try:
                await self._client.drain()
            except (NatsError, TimeoutError) as exc:
                logger.warning("closing the NATS connection failed: %r", exc)
        logger.info("disconnected from NATS")

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("NATS bus task failed", exc_info=task.exception())


def _random_name() -> str:
    return f"worker-{secrets.token_hex(4)}"


class _ConnectionEvents:
    """Logs the NATS client's connection events, except those of close()."""

    def __init__(self) -> None:
        self.closing = False
        self._log = RateLimitedLog(logger)

    async def error(self, exc: Exception) -> None:
        self._log.warning("error", "NATS connection error: %r", exc)

    async def disconnected(self) -> None:
        if not self.closing:
            logger.warning("disconnected from NATS; reconnecting")

    async def reconnected(self) -> None:
        logger.info("reconnected to NATS")
