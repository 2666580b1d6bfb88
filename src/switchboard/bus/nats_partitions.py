"""Partitions of the inbound stream, each consumed by one logic worker at a time.

Ownership lives in a JetStream key-value bucket whose entries expire
``lease_ttl_s`` after their last write:

- ``workers.<name>``: present while the worker is alive;
- ``p<n>``: the name of the worker that owns partition n.

Every ``lease_ttl_s / 3`` seconds a worker rewrites its own key, renews its
partitions with a compare-and-set on their revision, and counts the live
workers. It owns at most ceil(partitions / workers): above that it releases
partitions, below it claims free ones. A crashed worker's partitions become
free when their keys expire, so another worker takes them over within about
``lease_ttl_s`` plus one renewal interval.

Claiming a partition deletes the consumers of earlier owners and creates a
new one. The stream has work-queue retention, so it contains exactly the
messages no owner has acknowledged, and the new consumer starts with the
oldest of them. So frames keep their order across a takeover. Those the old
owner handled but had not acknowledged are handled again. A deleted
consumer also stops an old owner that lost its lease but still runs (a
paused process, for example) from taking more messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, KeyWrongLastSequenceError, NoKeysError
from nats.js.errors import NotFoundError as JsNotFoundError
from nats.js.kv import KeyValue

from switchboard.bus.base import Inbound, InboundHandler, SettledHook
from switchboard.bus.codec import decode_inbound

__all__ = ["BusNames", "PartitionWorker"]

logger = logging.getLogger("switchboard.bus")

FETCH_WAIT_S: Final = 2.0
"""Maximum wait of one fetch for new frames. It bounds how long a released
partition takes to stop."""
ACK_WAIT_S: Final = 300.0
"""Time JetStream waits for an acknowledgement before it redelivers a frame
to the same consumer. Handling a batch takes far less, and a crashed owner's
frames are redelivered by the next owner's new consumer instead."""

STOP_TIMEOUT_S: Final = 60.0
"""Time stop() waits for the partitions to finish and acknowledge their frames."""

ErrorHandler = Callable[[Inbound], None]


@dataclass(frozen=True, slots=True)
class BusNames:
    """Names of the NATS objects of one deployment, all under ``namespace``."""

    namespace: str

    @property
    def stream(self) -> str:
        return f"{self.namespace}_inbound"

    @property
    def owners_bucket(self) -> str:
        return f"{self.namespace}_owners"

    @property
    def inbound_subjects(self) -> str:
        return f"{self.namespace}.in.*"

    def inbound_subject(self, partition: int) -> str:
        return f"{self.namespace}.in.{partition}"

    def outbound_subject(self, gateway: str) -> str:
        return f"{self.namespace}.out.{gateway}"

    @property
    def broadcast_subject(self) -> str:
        """Subject of deliveries to every gateway (``bus.base.BROADCAST``)."""
        return f"{self.namespace}.broadcast"


@dataclass(slots=True)
class _Claim:
    """A partition this worker owns."""

    partition: int
    revision: int
    """Revision of the partition's key written by the last renewal."""
    valid_until: float
    """Loop time after which the key may have expired, so another worker
    may own the partition."""
    stopping: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class PartitionWorker:
    """Claims partitions of the inbound stream and handles their frames in order.

    ``handler`` gets each frame; ``settled`` returns once the work of the
    frames handled so far is durable, and only then are they acknowledged.
    ``on_error`` is called with a frame whose handler raised, after the
    error is logged.
    """

    def __init__(
        self,
        js: JetStreamContext,
        names: BusNames,
        partitions: int,
        name: str,
        handler: InboundHandler,
        settled: SettledHook | None,
        on_error: ErrorHandler,
        *,
        lease_ttl_s: float,
        batch: int,
    ) -> None:
        self.name = name
        self._js = js
        self._names = names
        self._partitions = partitions
        self._handler = handler
        self._settled = settled
        self._on_error = on_error
        self._lease_ttl_s = lease_ttl_s
        self._batch = batch
        self._claims: dict[int, _Claim] = {}
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def owned(self) -> list[int]:
        """Partitions owned now, ascending."""
        return sorted(self._claims)

    async def start(self) -> None:
        """Open the ownership bucket and start claiming partitions."""
        self._kv = await self._js.create_key_value(
            bucket=self._names.owners_bucket,
            ttl=self._lease_ttl_s,
            history=1,
            description="switchboard: owners of the inbound partitions",
        )
        self._task = asyncio.create_task(self._run())
        logger.info(
            "logic worker %s consumes %s with %d partitions",
            self.name,
            self._names.stream,
            self._partitions,
        )

    async def stop(self) -> None:
        """Finish and acknowledge the frames being handled, then release all."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tasks = [claim.task for claim in self.claims() if claim.task is not None]
        for claim in self.claims():
            claim.stopping = True
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            if late:
                logger.error(
                    "logic worker %s: %d partitions did not stop within %.0f s;"
                    " their unacknowledged frames are handled again",
                    self.name,
                    len(late),
                    STOP_TIMEOUT_S,
                )
                for task in late:
                    task.cancel()
        kv = self._require_kv()
        with contextlib.suppress(Exception):
            await kv.delete(self._worker_key)
        logger.info("logic worker %s stopped", self.name)

    def claims(self) -> list[_Claim]:
        return list(self._claims.values())

    # Ownership.

    async def _run(self) -> None:
        interval = self._lease_ttl_s / 3
        while True:
            try:
                # A round slower than a lease is of no use, so it is cut off.
                async with asyncio.timeout(self._lease_ttl_s):
                    await self._rebalance()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "logic worker %s could not renew its partitions, retrying in"
                    " %.1f s: %r",
                    self.name,
                    interval,
                    exc,
                )
            await asyncio.sleep(interval)

    async def _rebalance(self) -> None:
        """Renew this worker's keys, then release or claim toward a fair share.

        Partitions being released stay owned, and renewed, until their
        consumers have acknowledged what they handled.
        """
        kv = self._require_kv()
        await kv.put(self._worker_key, b"")
        for claim in self.claims():
            await self._renew(claim)

        keys = await _keys(kv)
        workers = sum(1 for key in keys if key.startswith("workers."))
        share = math.ceil(self._partitions / max(1, workers))
        active = sorted(
            (c for c in self.claims() if not c.stopping), key=lambda c: c.partition
        )
        surplus = len(active) - share
        if surplus > 0:
            for claim in active[-surplus:]:
                logger.info(
                    "logic worker %s releases partition %d for %d workers",
                    self.name,
                    claim.partition,
                    workers,
                )
                claim.stopping = True
            return

        missing = share - len(self._claims)
        if missing <= 0:
            return
        free = [p for p in range(self._partitions) if f"p{p}" not in keys]
        random.shuffle(free)
        for partition in free[:missing]:
            await self._claim(partition)

    async def _renew(self, claim: _Claim) -> None:
        kv = self._require_kv()
        # The key lives lease_ttl_s from its write, which comes after this.
        started = asyncio.get_running_loop().time()
        try:
            claim.revision = await kv.update(
                f"p{claim.partition}", self.name.encode(), last=claim.revision
            )
        except KeyWrongLastSequenceError:
            # The key expired (this worker was too slow to renew it) and maybe
            # another worker owns the partition now.
            logger.warning(
                "logic worker %s lost partition %d", self.name, claim.partition
            )
            claim.stopping = True
            self._claims.pop(claim.partition, None)
            return
        claim.valid_until = started + self._lease_ttl_s

    async def _claim(self, partition: int) -> None:
        kv = self._require_kv()
        started = asyncio.get_running_loop().time()
        try:
            revision = await kv.create(f"p{partition}", self.name.encode())
        except KeyWrongLastSequenceError:
            return  # another worker was faster
        claim = _Claim(partition, revision, started + self._lease_ttl_s)
        try:
            subscription = await self._open_consumer(partition, revision)
        except Exception:
            with contextlib.suppress(Exception):
                await kv.delete(f"p{partition}", last=revision)
            raise
        self._claims[partition] = claim
        claim.task = asyncio.create_task(self._consume(claim, subscription))
        logger.info("logic worker %s claimed partition %d", self.name, partition)

    async def _release(self, claim: _Claim) -> None:
        """Forget ``claim`` and delete its key unless another worker wrote it."""
        if self._claims.get(claim.partition) is claim:
            del self._claims[claim.partition]
        kv = self._require_kv()
        try:
            await kv.delete(f"p{claim.partition}", last=claim.revision)
        except APIError:
            return  # the key expired, and another worker may own it already
        except Exception as exc:
            logger.warning(
                "logic worker %s could not release partition %d; it is free"
                " once its key expires: %r",
                self.name,
                claim.partition,
                exc,
            )
            return
        logger.info("logic worker %s released partition %d", self.name, claim.partition)

    async def _open_consumer(
        self, partition: int, revision: int
    ) -> JetStreamContext.PullSubscription:
        """Replace earlier owners' consumers of ``partition`` with a new one."""
        stream = self._names.stream
        subject = self._names.inbound_subject(partition)
        for info in await self._js.consumers_info(stream):
            if info.config.filter_subject == subject:
                with contextlib.suppress(JsNotFoundError):
                    await self._js.delete_consumer(stream, info.name)

        durable = f"p{partition}-r{revision}"
        config = api.ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_ack_pending=self._batch * 4,
        )
        await self._js.add_consumer(stream, config)
        return await self._js.pull_subscribe_bind(durable=durable, stream=stream)

    # Consuming.

    async def _consume(
        self, claim: _Claim, subscription: JetStreamContext.PullSubscription
    ) -> None:
        """Handle the partition's frames in order; acknowledge them once settled."""
        acks: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            while not claim.stopping:
                if loop.time() > claim.valid_until:
                    logger.warning(
                        "logic worker %s stops partition %d: its lease was not"
                        " renewed in time",
                        self.name,
                        claim.partition,
                    )
                    break
                messages = await _fetch(subscription, self._batch)
                if not messages:
                    continue
                for message in messages:
                    await self._handle(message.data)
                settled = asyncio.create_task(self._wait_settled())
                acks = asyncio.create_task(_acknowledge(acks, settled, messages))
        except Exception:
            logger.exception(
                "logic worker %s failed consuming partition %d",
                self.name,
                claim.partition,
            )
        finally:
            claim.stopping = True
            if acks is not None:
                await acks
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            await self._release(claim)

    async def _handle(self, data: bytes) -> None:
        try:
            item = decode_inbound(data)
        except ValueError as exc:
            logger.error("dropped an undecodable inbound frame: %s", exc)
            return
        try:
            await self._handler(item)
        except Exception:
            logger.exception(
                "handling frame type %d failed from %s user=%d",
                item.frame_type,
                item.endpoint,
                item.user_id,
            )
            self._on_error(item)

    async def _wait_settled(self) -> None:
        if self._settled is not None:
            await self._settled()

    @property
    def _worker_key(self) -> str:
        return f"workers.{self.name}"

    def _require_kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("PartitionWorker.start() was not awaited")
        return self._kv


async def _fetch(
    subscription: JetStreamContext.PullSubscription, batch: int
) -> list[Msg]:
    try:
        # The outer timeout guards against a fetch that outlives its own.
        async with asyncio.timeout(FETCH_WAIT_S * 3):
            return list(await subscription.fetch(batch, timeout=FETCH_WAIT_S))
    except TimeoutError:
        return []


async def _acknowledge(
    previous: asyncio.Task[None] | None,
    settled: Awaitable[None],
    messages: list[Msg],
) -> None:
    """Acknowledge ``messages`` after the previous batch and once settled.

    A frame whose acknowledgement is lost stays in the stream and is handled
    again: by this consumer after ACK_WAIT_S, or by the next owner.
    """
    if previous is not None:
        await previous
    await settled
    try:
        for message in messages:
            await message.ack()
    except Exception as exc:
        logger.warning("acknowledging %d frames failed: %r", len(messages), exc)


async def _keys(kv: KeyValue) -> set[str]:
    try:
        return set(await kv.keys())
    except NoKeysError:
        return set()
