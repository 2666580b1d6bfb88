"""The admin dashboard at /admin, in headless chromium against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, close_all, create_user
from tests.support.server import ServerProcess
from tests.support.web import Screenshot, start_server

ADMIN = "root"
ADMIN_PASSWORD = "password-root"

expect.set_options(timeout=10_000)


@pytest.fixture(autouse=True)
def close_raw_clients() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture(scope="module")
def admin_account(web_server: ServerProcess) -> str:
    response = httpx.post(
        web_server.base_url + "/v1/accounts",
        json={"name": ADMIN, "password": ADMIN_PASSWORD},
        headers={"X-Admin-Key": (web_server.data_dir / "admin.key").read_bytes().hex()},
    )
    assert response.status_code == 201, response.text
    return ADMIN


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def log_in(page: Page, base_url: str, name: str, password: str) -> None:
    page.goto(base_url + "/admin")
    page.fill("#login-form [name=name]", name)
    page.fill("#login-form [name=password]", password)
    page.click("#login-form button[type=submit]")


def figure(page: Page, key: str) -> int:
    return int(page.locator(f"[data-figure={key}] .value").inner_text())


def test_dashboard_needs_login(page: Page, web_server: ServerProcess) -> None:
    page.goto(web_server.base_url + "/admin")

    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#dashboard-view")).to_be_hidden()


def test_dashboard_rejects_wrong_password(
    page: Page, web_server: ServerProcess, admin_account: str
) -> None:
    log_in(page, web_server.base_url, admin_account, "not-the-password")

    expect(page.locator("#login-error")).to_contain_text("invalid name or password")
    expect(page.locator("#dashboard-view")).to_be_hidden()


def test_dashboard_tells_non_admin(
    page: Page, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    create_user(web_server.base_url, "dana")

    log_in(page, web_server.base_url, "dana", "password-dana")

    forbidden = page.locator("#forbidden-view")
    expect(forbidden).to_be_visible()
    expect(forbidden).to_contain_text("not an admin")
    expect(page.locator("#forbidden-message")).to_contain_text("SWITCHBOARD_ADMINS")
    expect(page.locator("#dashboard-view")).to_be_hidden()
    screenshot(page, "forbidden")


def test_dashboard_follows_traffic(
    page: Page, web_server: ServerProcess, admin_account: str, screenshot: Screenshot
) -> None:
    log_in(page, web_server.base_url, admin_account, ADMIN_PASSWORD)
    expect(page.locator("#dashboard-view")).to_be_visible()
    connections_before = figure(page, "connections")
    sent_before = figure(page, "messages_sent")
    _, eve = create_user(web_server.base_url, "eve")
    fay_id, fay = create_user(web_server.base_url, "fay")

    sender = RawClient(web_server.tcp_address)
    sender.connect(eve, platform=pb.PLATFORM_ANDROID)
    receiver = RawClient(web_server.tcp_address)
    receiver.connect(fay, platform=pb.PLATFORM_IOS)
    for client_id in range(1, 5):
        sender.send(pb.Send(to=fay_id, client_id=client_id, body=b"hi"))
        sender.expect(FrameType.SEND_ACK)

    figures = page.locator("#figures")
    expect(figures.locator("[data-figure=connections] .value")).to_have_text(
        str(connections_before + 2)
    )
    expect(figures.locator("[data-figure=messages_sent] .value")).to_have_text(
        str(sent_before + 4)
    )
    expect(page.locator("[data-platform=android] .count")).to_contain_text("1 (")
    expect(page.locator("[data-platform=ios] .count")).to_contain_text("1 (")
    expect(page.locator("#rate-chart polyline.sent")).to_have_count(1)
    expect(page.locator("#connection-chart polyline")).to_have_count(1)
    gateway_row = page.locator("#gateways tbody tr")
    expect(gateway_row.locator(".connections")).to_have_text(
        str(connections_before + 2)
    )
    screenshot(page, "traffic")

    sender.close()
    receiver.close()

    expect(figures.locator("[data-figure=connections] .value")).to_have_text(
        str(connections_before)
    )


def test_dashboard_drains_after_confirmation(
    browser: Browser, tmp_path: Path, screenshot: Screenshot
) -> None:
    server = start_server(tmp_path)
    try:
        _drain_from_the_page(browser, server, screenshot)
    finally:
        server.terminate()


def _drain_from_the_page(
    browser: Browser, server: ServerProcess, screenshot: Screenshot
) -> None:
    httpx.post(
        server.base_url + "/v1/accounts",
        json={"name": ADMIN, "password": ADMIN_PASSWORD},
        headers={"X-Admin-Key": (server.data_dir / "admin.key").read_bytes().hex()},
    ).raise_for_status()
    _, gus = create_user(server.base_url, "gus")
    client = RawClient(server.tcp_address)
    client.connect(gus)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, server.base_url, ADMIN, ADMIN_PASSWORD)
    row = page.locator("#gateways tbody tr")
    expect(row.locator(".state")).to_have_text("accepting")
    expect(row.locator(".connections")).to_have_text("1")

    # Cancelling the dialog drains nothing.
    row.get_by_role("button", name="Drain…").click()
    dialog = page.locator("#drain-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#drain-last")).to_be_visible()
    screenshot(page, "confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(500)
    assert client.drain() == 0
    expect(row.locator(".state")).to_have_text("accepting")

    row.get_by_role("button", name="Drain…").click()
    dialog.get_by_role("button", name="Drain", exact=True).click()

    expect(page.locator("#drain-result")).to_contain_text("1 clients were told")
    expect(row.locator(".state")).to_have_text("draining")
    expect(row.get_by_role("button", name="Drain…")).to_be_disabled()
    reconnect = client.expect(FrameType.RECONNECT)
    assert isinstance(reconnect, pb.Reconnect)
    assert reconnect.reason == "drained by an admin"
    screenshot(page, "drained")
    context.close()
