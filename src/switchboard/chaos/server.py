"""A ``switchboard serve`` child process that the chaos check can SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

__all__ = ["ServerProcess"]

logger = logging.getLogger("switchboard.chaos")

START_TIMEOUT = 30.0
"""Seconds a started server has to answer its health check."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One server on 127.0.0.1, with ports and data directory kept across restarts.

    ``environ`` adds ``SWITCHBOARD_<SETTING>`` variables to the child's
    environment. The child's output goes to ``log_path``.
    """

    def __init__(
        self, data_dir: Path, log_path: Path, environ: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.environ = environ or {}
        self.tcp_port = _free_port()
        self.http_port = _free_port()
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tcp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.tcp_port)

    async def start(self) -> None:
        """Start the server and wait until it is healthy.

        Raises RuntimeError with the log's tail if it exits or does not
        become healthy within START_TIMEOUT seconds.
        """
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
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=log, env={**os.environ, **self.environ}
            )
        self.starts += 1
        logger.info("started server pid %d (start %d)", self._process.pid, self.starts)
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=1.0) as http:
            while loop.time() < deadline:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise RuntimeError(
                        f"the server exited with status {self._process.returncode};"
                        f" log tail:\n{self.log_tail()}"
                    )
                try:
                    response = await http.get(self.base_url + "/healthz")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(
            f"the server was not healthy after {START_TIMEOUT:g} s; log tail:\n"
            + self.log_tail()
        )

    async def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
            logger.info("killed server pid %d", process.pid)

    async def restart(self) -> None:
        """SIGKILL the server and start it again on the same ports and data."""
        await self.kill()
        await self.start()

    async def stop(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """SIGTERM the server; SIGKILL it if it has not exited within ``timeout``."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            logger.warning("the server did not stop within %g s; killing it", timeout)
            await self.kill()

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError as exc:
            return f"(log unreadable: {exc})"
