"""A whole cluster on this machine, for development and tests.

:class:`LocalCluster` starts one dispatcher, gateways and logic workers as
``python -m switchboard <role>`` processes against local PostgreSQL, Redis
and NATS. Each cluster gets a fresh namespace (NATS stream, subjects and
bucket, Redis keys) and a fresh PostgreSQL database, and removes them all
when it stops, so clusters never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import asyncpg
import httpx
import nats
import redis.asyncio as redis
from nats.js.errors import NotFoundError

from switchboard.bus.nats_partitions import BusNames

__all__ = ["LocalCluster", "RoleProcess", "free_port"]

logger = logging.getLogger("switchboard.cluster")

READY_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RoleProcess:
    """One role process on fixed ports, which can be stopped and started again."""

    def __init__(
        self,
        role: str,
        name: str,
        env: dict[str, str],
        log_path: Path,
        *,
        tcp_port: int = 0,
    ) -> None:
        self.role = role
        self.name = name
        self.env = env
        self.log_path = log_path
        self.tcp_port = tcp_port
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        command = [sys.executable, "-m", "switchboard", self.role]
        command += ["--name", self.name, "--http", f"127.0.0.1:{self.http_port}"]
        if self.role == "gateway":
            command += ["--tcp", f"127.0.0.1:{self.tcp_port}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, env={**os.environ, **self.env}
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until ``GET /healthz`` returns 200; raise RuntimeError if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; log:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.http_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL the process and wait for it to go."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the process; SIGKILL it if it has not exited in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop within %.0f s; killed", self.name, timeout
                )
                self.kill()
        return self.process.returncode

    def log_tail(self, size: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-size:]


class LocalCluster:
    """A dispatcher, ``gateways`` gateways and ``logic_workers`` logic workers.

    ``work_dir`` receives one log file per process and the dispatcher's
    data. ``env`` adds ``SWITCHBOARD_*`` settings for every process.
    ``postgres_url`` is the server, without a database name; the cluster
    creates its own database there and drops it in stop().
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        gateways: int = 2,
        logic_workers: int = 2,
        dispatcher_port: int = 0,
        lease_ttl: float = 3.0,
        env: dict[str, str] | None = None,
        nats_url: str = "nats://127.0.0.1:4222",
        redis_url: str = "redis://127.0.0.1:6379/0",
        postgres_url: str = "postgresql://postgres@127.0.0.1:5432",
    ) -> None:
        self.work_dir = work_dir
        self.namespace = f"sb_{secrets.token_hex(4)}"
        self.database = f"{self.namespace}_db"
        self.nats_url = nats_url
        self.redis_url = redis_url
        self.postgres_url = postgres_url.rstrip("/")
        shared = {
            "SWITCHBOARD_NAMESPACE": self.namespace,
            "SWITCHBOARD_NATS_URL": nats_url,
            "SWITCHBOARD_REDIS_URL": redis_url,
            "SWITCHBOARD_POSTGRES_DSNS": f"{self.postgres_url}/{self.database}",
            "SWITCHBOARD_LEASE_TTL": str(lease_ttl),
            **(env or {}),
        }
        self.logic = [
            self._role("logic", f"logic{i + 1}", shared) for i in range(logic_workers)
        ]
        self.gateways = [
            self._role("gateway", f"gateway{i + 1}", shared, tcp_port=free_port())
            for i in range(gateways)
        ]
        dispatcher_env = {
            **shared,
            "SWITCHBOARD_DATA_DIR": str(work_dir / "dispatcher-data"),
        }
        self.dispatcher = self._role("dispatcher", "dispatcher", dispatcher_env)
        if dispatcher_port:
            self.dispatcher.http_port = dispatcher_port
        self._created = False

    def _role(
        self, role: str, name: str, env: dict[str, str], *, tcp_port: int = 0
    ) -> RoleProcess:
        log_path = self.work_dir / f"{name}.log"
        return RoleProcess(role, name, env, log_path, tcp_port=tcp_port)

    @property
    def processes(self) -> list[RoleProcess]:
        return [*self.logic, *self.gateways, self.dispatcher]

    @property
    def base_url(self) -> str:
        """The dispatcher's URL: the server URL for clients."""
        return self.dispatcher.http_url

    def start(self) -> None:
        """Create the database, start every process and wait until all are ready.

        Raises RuntimeError, after stopping what started, when a process
        does not become ready.
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(_admin(self.postgres_url, f'CREATE DATABASE "{self.database}"'))
        self._created = True
        try:
            for process in self.processes:
                process.spawn()
            for process in self.processes:
                process.wait_ready()
            self.wait_listed(len(self.gateways))
        except BaseException:
            self.stop()
            raise

    def wait_listed(self, count: int, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the dispatcher lists ``count`` gateways."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.base_url}/v1/gateways", timeout=2)
                listed = response.json()["gateways"]
                if sum(1 for g in listed if g["transport"] == "tcp") == count:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the dispatcher does not list {count} gateways")

    def stop(self) -> None:
        """Stop every process, then delete the namespace and the database.

        Gateways stop first, so they can still hand their clients' frames to
        the logic workers; the logic workers stop last.
        """
        for process in [*self.gateways, self.dispatcher, *self.logic]:
            process.terminate()
        asyncio.run(self._clean_up())

    async def _clean_up(self) -> None:
        errors: list[BaseException] = []
        for step in (self._delete_nats, self._delete_redis_keys, self._drop_database):
            try:
                await step()
            except Exception as exc:
                errors.append(exc)
                logger.error("cleaning up cluster %s failed: %r", self.namespace, exc)
        if errors:
            raise errors[0]

    async def _delete_nats(self) -> None:
        names = BusNames(self.namespace)
        client = await nats.connect(self.nats_url)
        try:
            js = client.jetstream()
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(names.stream)
            with contextlib.suppress(NotFoundError):
                await js.delete_key_value(names.owners_bucket)
        finally:
            await client.close()

    async def _delete_redis_keys(self) -> None:
        client: redis.Redis = redis.Redis.from_url(self.redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{self.namespace}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    async def _drop_database(self) -> None:
        if self._created:
            # FORCE ends sessions a killed process left open (PostgreSQL 13+).
            await _admin(
                self.postgres_url,
                f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)',
            )
            self._created = False

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def _admin(postgres_url: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{postgres_url}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
