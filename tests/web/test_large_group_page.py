"""The web chat client in a large group, which the server keeps as a timeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, close_all, create_user
from tests.support.server import ServerProcess
from tests.support.web import WEB_SERVER_ENV, MakeUser, Screenshot

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose groups of more than 2 members are large."""
    directory = tmp_path_factory.mktemp("large-group-web")
    env = WEB_SERVER_ENV | {"SWITCHBOARD_LARGE_GROUP_THRESHOLD": "2"}
    server = ServerProcess(directory / "data", directory / "server.log", env)
    server.start()
    yield server
    server.terminate()


@pytest.fixture(autouse=True)
def close_raw_clients() -> Iterator[None]:
    yield
    close_all()


def timeline_cursors(page: Page) -> dict[str, int]:
    state = page.evaluate(
        "() => JSON.parse(localStorage.getItem(window.switchboardChat.local.key))"
    )
    cursors: dict[str, int] = state["timelineCursors"]
    return cursors


def test_large_group_in_browsers(
    users: MakeUser, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    erin, finn, gail = users("erin"), users("finn"), users("gail")
    erin.page.click(".new-group summary")
    erin.page.fill("#new-group [name=name]", "climbers")
    erin.page.fill("#new-group [name=members]", "finn, gail")
    erin.page.click("#new-group button")
    expect(erin.page.locator("#thread-title")).to_have_text("climbers")
    erin.send("rope at nine?")

    for member in (finn, gail):
        member.open_conversation("climbers")
        expect(member.bubbles("rope at nine?")).to_have_count(1)
        notice = member.page.locator("#messages .message.notice").first
        expect(notice).to_contain_text("erin created the group")
    finn.send("yes")
    expect(erin.bubbles("yes")).to_have_count(1)
    expect(gail.bubbles("yes")).to_have_count(1)

    # Offline, gail misses three messages; back online she syncs them once.
    gail.page.context.set_offline(True)
    expect(gail.state()).to_have_attribute("data-state", "offline")
    for number in range(1, 4):
        erin.send(f"knot {number}")
    expect(erin.acknowledged("knot 3")).to_have_count(1)
    gail.page.context.set_offline(False)
    expect(gail.state()).to_have_attribute("data-state", "online")
    for number in range(1, 4):
        expect(gail.bubbles(f"knot {number}")).to_have_count(1)
    expect(gail.bubbles("yes")).to_have_count(1)
    screenshot(gail.page, "gail")

    # The timeline's cursor survives a reload: nothing shows twice.
    gail.page.reload()
    expect(gail.state()).to_have_attribute("data-state", "online")
    gail.open_conversation("climbers")
    for text in ("rope at nine?", "yes", "knot 1", "knot 3"):
        expect(gail.bubbles(text)).to_have_count(1)
    cursors = timeline_cursors(gail.page)
    assert list(cursors.values()) == [6]


def test_browser_gets_raw_client_timeline_message(
    users: MakeUser, web_server: ServerProcess
) -> None:
    hana, ivan = users("hana"), users("ivan")
    _, token = create_user(web_server.base_url, "jon")
    jon = RawClient(web_server.tcp_address)
    jon.connect(token)
    hana.page.click(".new-group summary")
    hana.page.fill("#new-group [name=name]", "ferry")
    hana.page.fill("#new-group [name=members]", "ivan, jon")
    hana.page.click("#new-group button")
    notice = jon.expect(FrameType.MESSAGE)
    assert isinstance(notice, pb.Message)
    assert notice.group_seq == 1

    jon.send(pb.Send(group=notice.group, client_id=1, body=b"from the raw client"))
    ack = jon.expect(FrameType.SEND_ACK)
    assert isinstance(ack, pb.SendAck)
    assert ack.group_seq == 2

    ivan.open_conversation("ferry")
    expect(ivan.bubbles("from the raw client")).to_have_count(1)
