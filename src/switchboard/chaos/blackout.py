"""Measure how long clients take to catch up after a network blackout.

``clients`` SDK clients with default options connect through the chaos proxy,
their connections spread over one heartbeat interval so that their heartbeat
timers are out of phase. The proxy then stalls for ``blackout`` seconds:
nothing moves in either direction and new connections wait. Meanwhile a
sender, connected directly, sends each client ``messages`` messages. Each
client's sync time is the time from the end of the blackout until it has
handed out every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from switchboard.chaos.faults import FaultCounts, FaultSettings
from switchboard.chaos.history import History, SendRecord
from switchboard.chaos.proxy import ChaosProxy
from switchboard.chaos.run import Device, discover_tcp, receive_into, through
from switchboard.chaos.server import ServerProcess
from switchboard.client import Client, TransportFactory

__all__ = ["BlackoutOptions", "BlackoutResult", "measure_blackout"]

logger = logging.getLogger("switchboard.chaos")


@dataclass(slots=True)
class BlackoutOptions:
    """Parameters of a blackout measurement. Times are in seconds."""

    clients: int = 10
    blackout: float = 30.0
    messages: int = 10
    """Messages sent to each client during the blackout."""
    faults: FaultSettings = field(default_factory=FaultSettings)
    """Faults the proxy injects besides the blackout."""
    server_url: str | None = None
    """An existing server to test; None starts an embedded one with default
    settings."""
    spread: float | None = None
    """Time over which the clients connect, one after another; None: one
    heartbeat interval of the server."""
    refuse_new: bool = False
    """Reset connections opened during the blackout at once, so that
    connect attempts fail fast and the SDK backs off, instead of holding
    them until the blackout ends."""
    settle_timeout: float = 180.0
    """Time after the blackout for every client to catch up."""

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is out of range."""
        if self.clients < 1 or self.messages < 1:
            raise ValueError("clients and messages must be 1 or more")
        if not self.blackout > 0:
            raise ValueError(f"invalid blackout={self.blackout}: use more than 0 s")
        self.faults.validate()


@dataclass(slots=True)
class BlackoutResult:
    """Sync times per client, with the run's history for the checker."""

    sync_times: list[float]
    """Seconds from the end of the blackout until each client had every
    message; infinity for a client that did not catch up in time."""
    heartbeat: int
    """The server's heartbeat interval, in seconds."""
    history: History
    faults: FaultCounts
    duration: float

    def summary(self) -> dict[str, float]:
        """Return the minimum, median, 90th percentile and maximum sync time."""
        times = sorted(self.sync_times)
        p90 = times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)]
        return {
            "min": times[0],
            "median": statistics.median(times),
            "p90": p90,
            "max": times[-1],
        }


async def measure_blackout(options: BlackoutOptions) -> BlackoutResult:
    """Run one blackout and return every client's sync time."""
    options.validate()
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        base_url, target = await _server(options, stack)
        heartbeat = await _heartbeat_of(base_url)
        proxy = ChaosProxy(target, options.faults)
        await proxy.start()
        stack.push_async_callback(proxy.close)

        history = History()
        tag = secrets.token_hex(3)
        sender = await _open(base_url, f"blackout-{tag}-sender", None)
        spread = heartbeat if options.spread is None else options.spread
        victims = []
        for index in range(options.clients):
            victims.append(
                await _open(base_url, f"blackout-{tag}-{index}", through(proxy))
            )
            await asyncio.sleep(spread / options.clients)
        devices = [sender, *victims]
        for device in devices:
            history.add_device(device.user_id, device.device)
            stack.push_async_callback(device.client.close)
        receivers = [asyncio.create_task(receive_into(d, history)) for d in devices]

        try:
            await _black_out(proxy, sender, victims, options, history)
            ended = time.monotonic()
            sync_times = await _sync_times(victims, history, ended, options)
            await asyncio.sleep(0.5)
        finally:
            for task in receivers:
                task.cancel()
        return BlackoutResult(
            sync_times, heartbeat, history, proxy.counts, time.monotonic() - started
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def _server(
    options: BlackoutOptions, stack: contextlib.AsyncExitStack
) -> tuple[str, tuple[str, int]]:
    if options.server_url is not None:
        base_url = options.server_url.rstrip("/")
        return base_url, await discover_tcp(base_url)
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    server = ServerProcess(directory / "data", directory / "server.log")
    await server.start()
    stack.push_async_callback(server.stop)
    return server.base_url, server.tcp_address


async def _heartbeat_of(base_url: str) -> int:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(base_url + "/v1/gateways")
        response.raise_for_status()
        heartbeat: int = response.json()["heartbeat"]
        return heartbeat


async def _open(
    base_url: str, name: str, open_transport: TransportFactory | None
) -> Device:
    """Create, log in and connect a client with the SDK's default options."""
    if open_transport is None:
        client = Client(base_url)
    else:
        client = Client(base_url, open_transport=open_transport)
    password = "password-" + name
    await client.create_account(name, password)
    await client.login(name, password, device="phone")
    await client.connect("tcp", timeout=60)
    return Device(client.user_id, client.device, client)


async def _black_out(
    proxy: ChaosProxy,
    sender: Device,
    victims: list[Device],
    options: BlackoutOptions,
    history: History,
) -> None:
    """Stall the proxy, send to every victim meanwhile, then resume."""
    loop = asyncio.get_running_loop()
    end = loop.time() + options.blackout
    proxy.stall(refuse_new=options.refuse_new)
    logger.info("blackout of %g s started", options.blackout)
    async with asyncio.TaskGroup() as group:
        for index in range(options.messages):
            for victim in victims:
                body = f"{sender.user_id}/{sender.device}/{victim.user_id}-{index}"
                record = SendRecord(
                    sender.user_id,
                    sender.device,
                    len(history.sends),
                    victim.user_id,
                    body.encode(),
                )
                history.record_send(record)
                group.create_task(_send(sender, record))
            await asyncio.sleep(options.blackout / (options.messages + 1))
    await asyncio.sleep(max(0.0, end - loop.time()))
    proxy.resume()
    logger.info("blackout ended")


async def _send(sender: Device, record: SendRecord) -> None:
    sent = await sender.client.send(record.recipient, record.body.decode())
    record.message_id, record.client_id = sent.id, sent.client_id


async def _sync_times(
    victims: list[Device],
    history: History,
    ended: float,
    options: BlackoutOptions,
) -> list[float]:
    async def wait_synced(victim: Device) -> float:
        expected = {
            record.body
            for record in history.sends.values()
            if record.recipient == victim.user_id
        }
        try:
            async with asyncio.timeout(options.settle_timeout):
                while not expected <= victim.received:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return math.inf
        return time.monotonic() - ended

    return list(await asyncio.gather(*(wait_synced(v) for v in victims)))
