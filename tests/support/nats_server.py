"""A private NATS server with JetStream, for tests that stop and restart NATS.

The shared server on port 4222 serves other test runs, so a test that takes
NATS away starts its own ``nats-server`` on a free port. Its JetStream
directory survives a restart, as a real deployment's disk does.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.server import free_port

__all__ = ["NatsServer"]


class NatsServer:
    """``nats-server -js`` on 127.0.0.1 and a fixed free port."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        command = [
            "nats-server",
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-js",
            "-sd", str(self.work_dir / "jetstream"),
        ]  # fmt: skip
        with (self.work_dir / "nats.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nats-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL the server; what JetStream stored on disk stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
