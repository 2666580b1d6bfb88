"""Helpers for the browser tests: a server for the pages, and screenshots."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.fixtures import SHORT_TIMEOUTS
from tests.support.server import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

__all__ = ["WEB_SERVER_ENV", "ChatPage", "MakeUser", "Screenshot", "start_server"]

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


class ChatPage:
    """One user of the web chat client at /app, in its own browser context."""

    def __init__(self, page: Page, base_url: str, name: str) -> None:
        self.page = page
        self.base_url = base_url
        self.name = name
        self.password = "password-" + name

    def sign_up(self) -> ChatPage:
        """Create the account from the login form and wait until online."""
        return self._submit("#create-account")

    def log_in(self) -> ChatPage:
        return self._submit("#login-form button[type=submit]")

    def _submit(self, button: str) -> ChatPage:
        from playwright.sync_api import expect

        self.page.goto(self.base_url + "/app")
        self.page.fill("#login-form [name=name]", self.name)
        self.page.fill("#login-form [name=password]", self.password)
        self.page.click(button)
        expect(self.state()).to_have_attribute("data-state", "online")
        return self

    def state(self) -> Locator:
        return self.page.locator("#connection-state")

    def open_chat(self, peer: str) -> None:
        """Open the one-to-one conversation with ``peer`` by name."""
        self.page.fill("#new-chat [name=name]", peer)
        self.page.click("#new-chat button")
        self.page.locator("#thread-title", has_text=peer).wait_for()

    def open_conversation(self, title: str) -> None:
        """Open the listed conversation whose title is ``title``."""
        item = self.page.locator("#conversations li .title", has_text=title)
        item.click()
        self.page.locator("#thread-title", has_text=title).wait_for()

    def send(self, text: str) -> None:
        self.page.fill("#composer [name=text]", text)
        self.page.press("#composer [name=text]", "Enter")

    def bubbles(self, text: str) -> Locator:
        """Return the bubbles of the open conversation whose text is ``text``."""
        pattern = re.compile(f"^{re.escape(text)}$")
        return self.page.locator("#messages .message .text", has_text=pattern)

    def acknowledged(self, text: str) -> Locator:
        """Return this user's bubbles with ``text`` that the server acknowledged."""
        pattern = re.compile(f"^{re.escape(text)}$")
        return self.page.locator(
            "#messages .message.mine[data-id] .text", has_text=pattern
        )

    def pending(self) -> Locator:
        return self.page.locator("#messages .message.pending")

    def status(self) -> Locator:
        """Return the open conversation's status line: typing or presence."""
        return self.page.locator("#thread-status")

    def listed(self, title: str) -> Locator:
        """Return the conversation list's entry whose title is ``title``."""
        pattern = re.compile(f"^{re.escape(title)}$")
        title_locator = self.page.locator(".title", has_text=pattern)
        return self.page.locator("#conversations li", has=title_locator)

    def mine(self, text: str) -> Locator:
        """Return this user's message bubbles whose text is ``text``."""
        pattern = re.compile(f"^{re.escape(text)}$")
        text_locator = self.page.locator(".text", has_text=pattern)
        return self.page.locator("#messages .message.mine", has=text_locator)


MakeUser = Callable[[str], ChatPage]
"""Make a signed-up chat user with this name, online in its own browser context."""
