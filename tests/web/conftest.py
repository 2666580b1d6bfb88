"""Fixtures for the browser tests: Debian's chromium driven by Playwright.

When chromium or the playwright package is missing, loading this file runs
``scripts/browsers`` to install them, before the test modules import
playwright. Set ``SWITCHBOARD_SKIP_BROWSER_TESTS=1`` to skip these tests on a
machine that cannot install them. Screenshots go to
``$SWITCHBOARD_ARTIFACTS`` when set, else to a pytest temporary directory;
each test prints the paths of its screenshots.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.fixtures import close_raw_clients  # noqa: F401 (autouse fixture)
from tests.support.server import ServerProcess
from tests.support.web import ChatPage, MakeUser, Screenshot, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext


CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SKIP = os.environ.get("SWITCHBOARD_SKIP_BROWSER_TESTS") == "1"

collect_ignore_glob = ["test_*.py"] if SKIP else []


def _browsers_ready() -> bool:
    return CHROMIUM.exists() and importlib.util.find_spec("playwright") is not None


def _install_browsers() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "browsers"), sys.executable],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    importlib.invalidate_caches()
    if result.returncode != 0 or not _browsers_ready():
        raise RuntimeError(
            "scripts/browsers could not install chromium and playwright"
            f" (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
            " Run it as root, or set SWITCHBOARD_SKIP_BROWSER_TESTS=1."
        )


if not SKIP and not _browsers_ready():
    _install_browsers()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module; each test opens its own contexts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory for screenshots: $SWITCHBOARD_ARTIFACTS, else a temporary one."""
    configured = os.environ.get("SWITCHBOARD_ARTIFACTS")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def screenshot(artifacts: Path, request: pytest.FixtureRequest) -> Screenshot:
    return Screenshot(artifacts, request.node.name)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module; its tests use distinct account names."""
    server = start_server(tmp_path_factory.mktemp("web-server"))
    yield server
    server.terminate()


@pytest.fixture
def users(browser: Browser, web_server: ServerProcess) -> Iterator[MakeUser]:
    """Make signed-up, online chat users; fail on any uncaught page error."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(name: str) -> ChatPage:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{name}: {error}"))
        return ChatPage(page, web_server.base_url, name).sign_up()

    yield make
    for context in contexts:
        context.close()
    assert errors == [], f"uncaught errors in the pages: {errors}"
