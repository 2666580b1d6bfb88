"""Load-generator processes, and the coordinator's handle on them.

The coordinator (the ``switchboard bench`` process) forks worker processes,
each running one uvloop event loop with its share of the clients. It sends a
worker a module-level coroutine function and its keyword arguments through a
pipe; the worker awaits ``function(state, **kwargs)`` and sends back the
result, one call at a time. Scenario modules define these functions, so all
client-side work of a scenario sits next to the code that measures it.

Times passed between processes are ``time.monotonic()`` values: on Linux the
clock is CLOCK_MONOTONIC, the same in every process, so a coordinator can
tell workers when to start a phase.

Workers are forked, not spawned, so they start in milliseconds without
importing anything again. The coordinator creates its pool before it starts
any thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from switchboard.bench.accounts import Credential
from switchboard.bench.client import ConnectFailed, Endpoints, FrameClient, open_client
from switchboard.bench.procfs import raise_file_limit, read_cpu_seconds, read_rss
from switchboard.bench.target import BenchError

__all__ = [
    "CONNECT_TIMEOUT",
    "Monitor",
    "WorkerPool",
    "WorkerState",
    "close_clients",
    "count_errors",
    "open_clients",
    "sleep_until",
    "split",
    "worker_count_for",
]

logger = logging.getLogger("switchboard.bench")

CONNECT_TIMEOUT = 30.0
"""Seconds one client has to connect and authenticate during setup."""
CONNECT_ATTEMPTS = 3
"""Tries per client during setup; later tries follow a failed connect."""
DEFAULT_CALL_TIMEOUT = 900.0
"""Seconds the coordinator waits for a worker call that sets no timeout."""

T = TypeVar("T")


@dataclass
class WorkerState:
    """State that one worker process keeps between calls."""

    index: int
    clients: list[FrameClient] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    """Background work started by one call and collected by a later one."""
    values: dict[str, Any] = field(default_factory=dict)
    """Scenario data kept between calls."""


WorkerFunction = Callable[..., Awaitable[Any]]


def split(items: Sequence[T], parts: int) -> list[list[T]]:
    """Split ``items`` into ``parts`` contiguous slices of nearly equal size."""
    size, extra = divmod(len(items), parts)
    slices: list[list[T]] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        slices.append(list(items[start:end]))
        start = end
    return slices


async def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline``."""
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# Worker-side functions shared by scenarios.


async def open_clients(
    state: WorkerState,
    credentials: list[Credential],
    endpoints: Endpoints,
    transport: str,
    heartbeat: int = 0,
    keepalive: bool = True,
    concurrency: int = 256,
) -> dict[str, Any]:
    """Connect and authenticate one client per credential; keep them open.

    ``heartbeat`` is the interval requested in Connect (0: the server
    default). With ``keepalive`` each client sends a heartbeat every interval
    in force, starting at a random point within the first one, so the
    heartbeats of many clients spread evenly.
    """
    limit = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    started = time.monotonic()
    cpu_before = time.process_time()

    async def connect(credential: Credential) -> FrameClient | None:
        async with limit:
            for attempt in range(CONNECT_ATTEMPTS):
                try:
                    async with asyncio.timeout(CONNECT_TIMEOUT):
                        return await open_client(
                            credential, endpoints, transport, heartbeat=heartbeat
                        )
                except (ConnectFailed, OSError, TimeoutError) as exc:
                    if attempt == CONNECT_ATTEMPTS - 1:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.1 * (attempt + 1))
            return None

    opened = await asyncio.gather(*(connect(item) for item in credentials))
    clients = [client for client in opened if client is not None]
    if keepalive:
        for client in clients:
            interval = client.connected.result().heartbeat
            client.schedule_heartbeats(interval, random.uniform(0, interval))
    state.clients.extend(clients)
    return {
        "opened": len(clients),
        "failed": len(failures),
        "failures": failures[:5],
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu_before,
        "total_open": sum(1 for client in state.clients if client.is_open),
    }


async def close_clients(state: WorkerState) -> int:
    """Abort every client connection of this worker; return how many."""
    for task in state.tasks.values():
        task.cancel()
    for task in state.tasks.values():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    state.tasks.clear()
    count = len(state.clients)
    for client in state.clients:
        client.abort()
    state.clients.clear()
    await asyncio.sleep(0)
    return count


async def count_errors(state: WorkerState) -> dict[str, int]:
    """Return the Error frames the clients of this worker received, by code."""
    totals: dict[str, int] = {}
    for client in state.clients:
        for code, count in client.errors.items():
            totals[str(code)] = totals.get(str(code), 0) + count
    return totals


# The worker process.


def _worker_main(connection: Connection, index: int) -> None:
    raise_file_limit()
    log_format = f"switchboard bench worker {index}: %(levelname)s: %(message)s"
    logging.basicConfig(level=logging.WARNING, format=log_format)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(connection, index))
    else:
        uvloop.run(_serve(connection, index))


async def _serve(connection: Connection, index: int) -> None:
    state = WorkerState(index)
    try:
        while True:
            request = await _receive(connection)
            if request is None:
                break
            function, kwargs = request
            try:
                result = await function(state, **kwargs)
            except Exception:
                connection.send(("error", traceback.format_exc()))
            else:
                connection.send(("ok", result))
    finally:
        await close_clients(state)


async def _receive(connection: Connection) -> Any:
    if not connection.poll(0):
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # The reader may fire again before it is removed.
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(connection.fileno(), wake)
        try:
            await readable
        finally:
            loop.remove_reader(connection.fileno())
            # add_reader made the pipe non-blocking; a large result written
            # to a non-blocking pipe fails with BlockingIOError.
            os.set_blocking(connection.fileno(), True)
    try:
        return connection.recv()
    except EOFError:
        return None


class WorkerPool:
    """Forked load-generator processes that run worker functions on request."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self._connections: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(child_end, index),
                name=f"switchboard-bench-worker-{index}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._connections.append(parent_end)
            self._processes.append(process)

    def __len__(self) -> int:
        return len(self._processes)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process.pid is not None]

    def submit(self, index: int, function: WorkerFunction, **kwargs: Any) -> None:
        """Start ``function(state, **kwargs)`` in worker ``index``."""
        self._connections[index].send((function, kwargs))

    def result(self, index: int, timeout: float = DEFAULT_CALL_TIMEOUT) -> Any:
        """Wait for the result of the call submitted to worker ``index``.

        Raises BenchError when the call raised, the worker died, or no result
        came within ``timeout`` seconds.
        """
        connection = self._connections[index]
        deadline = time.monotonic() + timeout
        while not connection.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
            process = self._processes[index]
            if not process.is_alive():
                raise BenchError(
                    f"load generator worker {index} exited with status"
                    f" {process.exitcode}"
                )
            if time.monotonic() >= deadline:
                raise BenchError(
                    f"load generator worker {index} sent no result within"
                    f" {timeout:.0f} s"
                )
        status, value = connection.recv()
        if status == "error":
            raise BenchError(f"load generator worker {index} failed:\n{value}")
        return value

    def call(
        self,
        index: int,
        function: WorkerFunction,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        **kwargs: Any,
    ) -> Any:
        self.submit(index, function, **kwargs)
        return self.result(index, timeout)

    def call_all(
        self,
        function: WorkerFunction,
        arguments: Sequence[dict[str, Any]],
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> list[Any]:
        """Run ``function`` in the first len(arguments) workers at once."""
        for index, kwargs in enumerate(arguments):
            self.submit(index, function, **kwargs)
        return [self.result(index, timeout) for index in range(len(arguments))]

    def close(self) -> None:
        """Tell every worker to close its clients and exit; wait for them."""
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                logger.warning("load generator worker pid=%s did not exit", process.pid)
                process.terminate()
                process.join(5)
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of the server process."""

    time: float
    """time.monotonic() of the reading."""
    cpu_seconds: float
    rss: int


class Monitor:
    """Samples the server's CPU time and RSS on a thread, for charts and windows."""

    def __init__(self, pid: int | None, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.pid is None:
            return
        self._thread = threading.Thread(
            target=self._run, name="switchboard-bench-monitor", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read()
            self._stop.wait(self.interval)

    def read(self) -> Sample | None:
        """Take one sample now and keep it; None if the server pid is unknown."""
        if self.pid is None:
            return None
        try:
            sample = Sample(
                time.monotonic(), read_cpu_seconds(self.pid), read_rss(self.pid)
            )
        except (OSError, ValueError):
            return None
        self.samples.append(sample)
        return sample

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def timeline(self, since: float) -> Iterator[tuple[float, float, int]]:
        """Yield (seconds since ``since``, CPU utilisation, RSS) per interval."""
        samples = [sample for sample in self.samples if sample.time >= since]
        for before, after in itertools.pairwise(samples):
            span = after.time - before.time
            if span > 0:
                utilisation = (after.cpu_seconds - before.cpu_seconds) / span
                yield after.time - since, utilisation, after.rss


def worker_count_for(connections: int, requested: int) -> int:
    """Return the number of workers for ``connections`` client connections.

    ``requested`` wins when above 0. Otherwise each worker gets at most
    10,000 connections, so a worker stays well below a limit of 20,000 open
    files per process.
    """
    if requested > 0:
        return requested
    return max(1, -(-connections // 10_000))
