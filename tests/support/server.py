"""A real ``switchboard serve`` process for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """Start, stop, kill and restart one server on fixed ports and a data dir."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file``: the server serves TLS with a certificate this CA signed."""
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env or {}
        self.ca_file = ca_file
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def tcp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.tcp_port)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 20.0) -> None:
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
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}; log:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            try:
                response = httpx.get(
                    self.base_url + "/healthz", timeout=1, verify=verify
                )
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s")

    def kill(self) -> None:
        """SIGKILL the server and wait for it to go."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM the server; SIGKILL it if it has not exited in time."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
