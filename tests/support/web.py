"""Helpers for the browser tests: a server for the pages, and screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.server import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["WEB_SERVER_ENV", "Screenshot", "start_server"]

WEB_SERVER_ENV = SHORT_TIMEOUTS | {
    "SWITCHBOARD_ADMINS": "root",
    "SWITCHBOARD_STATS_INTERVAL": "0.5",
    # A browser's heartbeat echo must arrive within its own timeout even on a
    # loaded machine, and the pages' media uploads need the real limits.
    "SWITCHBOARD_HEARTBEAT": "5",
    "SWITCHBOARD_MAX_FRAME_SIZE": "65536",
    "SWITCHBOARD_MAX_BODY_SIZE": "16384",
}


class Screenshot:
    """Save full-page screenshots named after the test and a step."""

    def __init__(self, directory: Path, test_name: str) -> None:
        self.directory = directory
        self.test_name = test_name

    def __call__(self, page: Page, step: str) -> Path:
        path = self.directory / f"{self.test_name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


def start_server(directory: Path) -> ServerProcess:
    """Start a server for browser tests, with admin ``root``."""
    directory.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(directory / "data", directory / "server.log", WEB_SERVER_ENV)
    server.start()
    return server
