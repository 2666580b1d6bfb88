"""Run SDK clients through the chaos proxy and record what happened.

A run creates ``clients`` users with ``devices`` devices each and connects
every device through a :class:`~switchboard.chaos.proxy.ChaosProxy`. Each
device sends its share of ``messages`` to three peers (users i+1, i+7 and
i+13, modulo the user count) with ``window`` sends in flight, and hands out
everything it receives. The server is the one at ``server_url``, or a child
``switchboard serve`` on a temporary data directory that the run may SIGKILL
and restart ``restarts`` times, evenly spread over the acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from switchboard.chaos.faults import FaultCounts, FaultSettings
from switchboard.chaos.history import History, Received, SendRecord
from switchboard.chaos.proxy import ChaosProxy
from switchboard.chaos.server import ServerProcess
from switchboard.client import (
    Client,
    ClientClosed,
    ClientOptions,
    Gateway,
    HeartbeatPolicy,
    SendRejected,
    ServerUnreachable,
    SessionEnded,
    Transport,
    TransportFactory,
)
from switchboard.client.transport import TcpTransport
from switchboard.config import parse_address

__all__ = [
    "Device",
    "RunOptions",
    "RunResult",
    "discover_tcp",
    "open_devices",
    "receive_into",
    "run_chaos",
    "through",
]

logger = logging.getLogger("switchboard.chaos")

PEER_OFFSETS = (1, 7, 13)
"""User i sends to users i+1, i+7 and i+13, modulo the user count."""
SETUP_CONCURRENCY = 8
"""Accounts created and logged in at once; each costs a password hash."""
CONNECT_TIMEOUT = 120.0
"""Seconds a device has to connect through the proxy when the run starts."""


@dataclass(slots=True)
class RunOptions:
    """Parameters of a chaos run. Times are in seconds."""

    clients: int = 20
    """Users; each has ``devices`` SDK clients."""
    devices: int = 1
    messages: int = 2000
    seed: int = 0
    restarts: int = 0
    """SIGKILLs and restarts of the embedded server during the run."""
    window: int = 8
    """Sends each device keeps in flight."""
    server_url: str | None = None
    """An existing server to test; None starts an embedded one."""
    faults: FaultSettings = field(default_factory=FaultSettings)
    timeout: float = 600.0
    """Time the sends may take before the run gives up on them."""
    settle_timeout: float = 60.0
    """Time after the last send for every device to receive what it should."""
    data_dir: Path | None = None
    """Data and log directory of the embedded server; None: a temporary one."""
    heartbeat: int = 2
    """Heartbeat interval of the embedded server and of the clients, which
    also wait this long for a heartbeat's echo. Short, so that black-holed
    connections are found within seconds; the server closes a connection
    after 1.5 silent intervals, so the network's delay variation must stay
    well below half an interval."""

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is out of range."""
        if self.clients < 2:
            raise ValueError(f"invalid clients={self.clients}: use 2 or more")
        if self.devices < 1 or self.window < 1 or self.messages < 0:
            raise ValueError("devices and window must be 1 or more, messages 0 or more")
        if self.heartbeat < 1:
            raise ValueError(f"invalid heartbeat={self.heartbeat}: use 1 s or more")
        if self.restarts and self.server_url is not None:
            raise ValueError(
                "restarts need the embedded server: drop --server or --restarts"
            )
        self.faults.validate()


@dataclass(slots=True)
class RunResult:
    """The history of a run, with the faults injected and the time it took."""

    history: History
    faults: FaultCounts
    restarts: int
    duration: float
    server_url: str


@dataclass(slots=True)
class Device:
    """One SDK client of a run."""

    user_id: int
    device: str
    client: Client
    received: set[bytes] = field(default_factory=set)
    """Bodies handed out so far."""

    @property
    def key(self) -> tuple[int, str]:
        return (self.user_id, self.device)


async def run_chaos(options: RunOptions) -> RunResult:
    """Run the workload and return its history; the caller checks it."""
    options.validate()
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        server, base_url, target = await _start_server(options, stack)
        proxy = ChaosProxy(target, options.faults)
        await proxy.start()
        stack.push_async_callback(proxy.close)

        history = History()
        devices = await open_devices(base_url, proxy, options, history)
        stack.push_async_callback(_close_devices, devices)
        restarts = await _exchange(options, devices, history, server)
        return RunResult(
            history, proxy.counts, restarts, time.monotonic() - started, base_url
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def _start_server(
    options: RunOptions, stack: contextlib.AsyncExitStack
) -> tuple[ServerProcess | None, str, tuple[str, int]]:
    if options.server_url is not None:
        base_url = options.server_url.rstrip("/")
        return None, base_url, await discover_tcp(base_url)

    if options.data_dir is None:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    else:
        directory = options.data_dir
        directory.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        directory / "data",
        directory / "server.log",
        {
            "SWITCHBOARD_HEARTBEAT": str(options.heartbeat),
            "SWITCHBOARD_MIN_HEARTBEAT": str(options.heartbeat),
            "SWITCHBOARD_MAX_HEARTBEAT": str(options.heartbeat),
        },
    )
    await server.start()
    stack.push_async_callback(server.stop)
    return server, server.base_url, server.tcp_address


async def discover_tcp(base_url: str) -> tuple[str, int]:
    """Return the TCP gateway address that ``base_url`` lists."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(base_url + "/v1/gateways")
        response.raise_for_status()
        listing = response.json()
    for gateway in listing.get("gateways", []):
        if gateway.get("transport") == "tcp":
            return parse_address(gateway["address"], 7070)
    raise ValueError(f"{base_url}/v1/gateways lists no tcp gateway")


def through(proxy: ChaosProxy) -> TransportFactory:
    """Return a transport factory that opens every TCP connection via ``proxy``."""

    async def open_transport(gateway: Gateway) -> Transport:
        return await TcpTransport.open(proxy.address_text)

    return open_transport


async def open_devices(
    base_url: str, proxy: ChaosProxy, options: RunOptions, history: History
) -> list[Device]:
    """Create ``users`` accounts, log in their devices, connect them via ``proxy``."""
    tag = secrets.token_hex(3)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def open_user(index: int) -> list[Device]:
        name, password = f"chaos-{tag}-{index}", f"chaos-password-{index}"
        opened = []
        async with gate:
            for number in range(options.devices):
                client = _new_client(base_url, proxy, options.heartbeat)
                if number == 0:
                    await client.create_account(name, password)
                await client.login(name, password, device=f"d{number}")
                opened.append(Device(client.user_id, client.device, client))
        for device in opened:
            try:
                await device.client.connect("tcp", timeout=CONNECT_TIMEOUT)
            except ServerUnreachable as exc:
                raise RuntimeError(
                    f"device {name}/{device.device} could not connect through the"
                    f" chaos proxy: {exc}"
                ) from exc
        return opened

    groups = await asyncio.gather(*(open_user(i) for i in range(options.clients)))
    devices = [device for group in groups for device in group]
    for device in devices:
        history.add_device(device.user_id, device.device)
    return devices


def _new_client(base_url: str, proxy: ChaosProxy, heartbeat: int) -> Client:
    options = ClientOptions(
        connect_timeout=5.0,
        echo_timeout=max(2.0, heartbeat),
        backoff_base=0.05,
        backoff_cap=1.0,
    )
    return Client(
        base_url,
        options=options,
        open_transport=through(proxy),
        heartbeat_policy=HeartbeatPolicy(min_interval=heartbeat),
    )


async def _close_devices(devices: list[Device]) -> None:
    results = await asyncio.gather(
        *(device.client.close() for device in devices), return_exceptions=True
    )
    for device, result in zip(devices, results, strict=True):
        if isinstance(result, Exception):
            logger.warning("closing client %s failed: %s", device.key, result)


async def _exchange(
    options: RunOptions,
    devices: list[Device],
    history: History,
    server: ServerProcess | None,
) -> int:
    """Send, receive and restart; return the number of restarts done."""
    acked = _Progress()
    async with _receiving(devices, history):
        restarter = None
        if server is not None and options.restarts:
            restarter = asyncio.create_task(
                _restart_during(server, options.restarts, options.messages, acked)
            )
        try:
            async with asyncio.timeout(options.timeout):
                await asyncio.gather(
                    *(
                        _send_share(device, options, devices, history, acked)
                        for device in devices
                    )
                )
        except TimeoutError:
            history.client_errors.append(
                f"the sends did not finish within {options.timeout:g} s"
            )
        restarts = 0
        if restarter is not None:
            restarter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                restarts = await restarter
        await _settle(devices, history, options.settle_timeout)
    return restarts


class _Progress:
    """Acknowledgements so far, with an event per new one."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        self.changed.set()

    async def wait_for(self, target: int) -> None:
        while self.count < target:
            self.changed.clear()
            await self.changed.wait()


async def _restart_during(
    server: ServerProcess, restarts: int, messages: int, acked: _Progress
) -> int:
    """SIGKILL and restart the server at evenly spaced acknowledgement counts."""
    done = 0
    for number in range(1, restarts + 1):
        await acked.wait_for(messages * number // (restarts + 1))
        logger.info("restart %d of %d after %d acks", number, restarts, acked.count)
        await server.restart()
        done += 1
    return done


def _recipients(devices: list[Device], user_id: int) -> list[int]:
    users = sorted({device.user_id for device in devices})
    index = users.index(user_id)
    peers = [users[(index + offset) % len(users)] for offset in PEER_OFFSETS]
    return [peer for peer in peers if peer != user_id]


async def _send_share(
    device: Device,
    options: RunOptions,
    devices: list[Device],
    history: History,
    acked: _Progress,
) -> None:
    position = devices.index(device)
    share, extra = divmod(options.messages, len(devices))
    count = share + (1 if position < extra else 0)
    recipients = _recipients(devices, device.user_id)
    window = asyncio.Semaphore(options.window)

    async def send_one(record: SendRecord) -> None:
        try:
            sent = await device.client.send(record.recipient, record.body.decode())
        except (SendRejected, SessionEnded, ClientClosed) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        else:
            record.message_id, record.client_id = sent.id, sent.client_id
            acked.add()
        finally:
            window.release()

    async with asyncio.TaskGroup() as group:
        for index in range(count):
            body = f"{device.user_id}/{device.device}/{index}".encode()
            to = recipients[index % len(recipients)]
            record = SendRecord(device.user_id, device.device, index, to, body)
            history.record_send(record)
            await window.acquire()
            group.create_task(send_one(record))


@contextlib.asynccontextmanager
async def _receiving(devices: list[Device], history: History) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(receive_into(device, history)) for device in devices]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def receive_into(device: Device, history: History) -> None:
    """Record every message ``device`` hands out until its client closes."""
    client = device.client
    while True:
        try:
            message = await client.next_message()
        except SessionEnded as exc:
            history.client_errors.append(
                f"the session of device {device.user_id}/{device.device} ended: {exc}"
            )
            return
        except ClientClosed:
            return
        device.received.add(message.body)
        received = Received(
            message.id,
            message.seq,
            message.sender_id,
            message.recipient_id,
            message.body,
        )
        history.record_received(device.key, received)


async def _settle(devices: list[Device], history: History, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until every device has every acknowledged message it should get."""
    expected: dict[tuple[int, str], set[bytes]] = {d.key: set() for d in devices}
    for record in history.sends.values():
        if not record.acked:
            continue
        for user_id in (record.sender, record.recipient):
            for name in history.devices[user_id]:
                expected[(user_id, name)].add(record.body)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            for device in devices:
                while not expected[device.key] <= device.received:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
    # Give late duplicates a moment to show up.
    await asyncio.sleep(0.5)
