"""The server under test: an embedded ``switchboard serve`` process, or a URL.

An embedded server runs as ``python -m switchboard serve`` on free ports of
127.0.0.1 with a temporary data directory, which is deleted when it stops.
Its settings come from ``SWITCHBOARD_<FIELD>`` environment variables: the
bench lifts the limits that would cap a measurement (send and read rates, the
per-address connection cap) and leaves every other setting at its default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from switchboard.bench.procfs import read_open_files_limit
from switchboard.config import parse_address

__all__ = [
    "BENCH_SERVER_ENV",
    "BenchError",
    "EmbeddedServer",
    "Target",
    "external_target",
    "free_port",
]

logger = logging.getLogger("switchboard.bench")

BENCH_SERVER_ENV: dict[str, str] = {
    # Per-user send rate and per-connection read rate: a load generator sends
    # far faster than any person, and these limits would set the result.
    "SWITCHBOARD_SEND_RATE": "0",
    "SWITCHBOARD_FRAME_RATE": "0",
    # All load comes from 127.0.0.1, which the per-address cap would stop at
    # 1,000 connections.
    "SWITCHBOARD_MAX_CONNECTIONS_PER_IP": "0",
}
"""Settings every embedded server gets; scenarios add their own."""

READY_TIMEOUT = 30.0
"""Seconds an embedded server has to respond to GET /healthz after it starts."""
STOP_TIMEOUT = 30.0
"""Seconds an embedded server has to exit after SIGTERM before SIGKILL."""


class BenchError(Exception):
    """A benchmark cannot run or failed; the message states why and what to do."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Target:
    """Addresses of the server under test, and its process when known."""

    base_url: str
    tcp_address: tuple[str, int]
    ws_url: str
    pid: int | None
    """Server process id, for /proc readings; None when it is unknown."""
    embedded: bool
    heartbeat: int
    """Default heartbeat interval of the server, seconds."""
    max_heartbeat: int
    env: dict[str, str] = field(default_factory=dict)
    """SWITCHBOARD_* settings given to an embedded server."""

    def describe(self) -> dict[str, Any]:
        return {
            "embedded": self.embedded,
            "base_url": self.base_url,
            "tcp": f"{self.tcp_address[0]}:{self.tcp_address[1]}",
            "ws": self.ws_url,
            "pid_known": self.pid is not None,
            "open_files_limit": (
                None if self.pid is None else read_open_files_limit(self.pid)
            ),
            "heartbeat": self.heartbeat,
            "max_heartbeat": self.max_heartbeat,
            "server_env": dict(sorted(self.env.items())),
        }


def fetch_gateways(
    base_url: str, pid: int | None, embedded: bool, env: dict[str, str]
) -> Target:
    """Build a Target from the server's GET /v1/gateways response."""
    try:
        response = httpx.get(base_url + "/v1/gateways", timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BenchError(
            f"GET {base_url}/v1/gateways failed: {exc}; check the --server URL"
        ) from exc
    body = response.json()
    tcp: tuple[str, int] | None = None
    ws_url = ""
    for gateway in body["gateways"]:
        if gateway["transport"] == "tcp":
            tcp = parse_address(gateway["address"], 7070)
        elif gateway["transport"] == "ws":
            ws_url = gateway["url"]
    if tcp is None or not ws_url:
        raise BenchError(
            f"{base_url}/v1/gateways lists no tcp or no ws gateway: {body['gateways']}"
        )
    return Target(
        base_url=base_url,
        tcp_address=tcp,
        ws_url=ws_url,
        pid=pid,
        embedded=embedded,
        heartbeat=int(body["heartbeat"]),
        max_heartbeat=int(body["max_heartbeat"]),
        env=env,
    )


def external_target(url: str, pid: int | None) -> Target:
    """Describe a server started elsewhere, at base URL ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BenchError(
            f"invalid --server URL {url!r}: expected http://HOST:PORT,"
            " the base URL of the server's HTTP API"
        )
    if pid is not None and not Path(f"/proc/{pid}").exists():
        raise BenchError(f"no process with --server-pid {pid} on this machine")
    return fetch_gateways(url.rstrip("/"), pid, embedded=False, env={})


class EmbeddedServer:
    """A ``python -m switchboard serve`` child process on free loopback ports.

    :attr:`data_dir` exists from construction, so it can be filled before
    :meth:`start`. Call :meth:`stop` afterwards, or use the object as a
    context manager after :meth:`start`.
    """

    def __init__(self, env: dict[str, str], log_path: Path | None = None) -> None:
        self.env = {**BENCH_SERVER_ENV, **env}
        self._temp = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
        self.data_dir = self._temp / "data"
        self.data_dir.mkdir()
        self.log_path = log_path or self._temp / "server.log"
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> Target:
        """Start the server and wait until it responds; return its Target."""
        command = [
            sys.executable,
            "-m",
            "switchboard",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--tcp",
            f"127.0.0.1:{self.tcp_port}",
            "--http",
            f"127.0.0.1:{self.http_port}",
        ]
        environ = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("SWITCHBOARD_")
        }
        environ.update(self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=log, env=environ, stdin=subprocess.DEVNULL
            )
        self._wait_ready()
        return fetch_gateways(self.base_url, self.process.pid, True, self.env)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the embedded server exited with status"
                    f" {self.process.returncode}; its log ends with:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise BenchError(
            f"the embedded server did not respond within {READY_TIMEOUT:.0f} s;"
            f" its log ends with:\n{self.log_tail()}"
        )

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL) and delete its data directory.

        Returns its exit status, or None if it never started.
        """
        status = None
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    logger.warning(
                        "embedded server pid=%d ignored SIGTERM for %.0f s; killing it",
                        process.pid,
                        STOP_TIMEOUT,
                    )
                    process.kill()
                    process.wait()
            status = process.returncode
        shutil.rmtree(self._temp, ignore_errors=True)
        return status

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
