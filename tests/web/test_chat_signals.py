"""Typing indicators, presence and read receipts in the web chat client.

Each user is a separate browser context against one real server, as in
test_chat_page.py. Users become conversation peers by writing to each other,
and the peer lookups of the server are cached, so each test waits for a
peer's presence to show before it relies on the peer relation.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, expect

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess
from tests.support.web import ChatPage, MakeUser, Screenshot

expect.set_options(timeout=10_000)

FORBIDDEN = 27

# Records the `active` field of every Typing frame the page sends.
RECORD_TYPING = """() => {
  const client = window.switchboardChat.client;
  const sendFrame = client.sendFrame.bind(client);
  window.typingSent = [];
  client.sendFrame = (type, message) => {
    if (type === 20) window.typingSent.push(message.active);
    return sendFrame(type, message);
  };
}"""


def make_peers(first: ChatPage, second: ChatPage) -> None:
    """Exchange one message each way, leaving the conversation open on both."""
    first.open_chat(second.name)
    first.send(f"hello {second.name}")
    second.open_conversation(first.name)
    expect(second.bubbles(f"hello {second.name}")).to_have_count(1)
    second.send(f"hello {first.name}")
    expect(first.bubbles(f"hello {first.name}")).to_have_count(1)
    # The server caches "not peers" for up to 5 seconds, so presence can
    # take a retry (every 6 seconds) to show.
    expect(first.status()).to_have_text("online", timeout=20_000)
    expect(second.status()).to_have_text("online", timeout=20_000)


def hide(page: ChatPage, hidden: bool) -> None:
    """Make the page report itself hidden or visible, as a background tab does."""
    page.page.evaluate(
        """(hidden) => {
          Object.defineProperty(document, "visibilityState", {
            value: hidden ? "hidden" : "visible",
            configurable: true,
          });
          document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_peer_sees_typing(users: MakeUser, screenshot: Screenshot) -> None:
    tara, uma = users("tara"), users("uma")
    make_peers(tara, uma)
    tara.page.evaluate(RECORD_TYPING)

    composer = tara.page.locator("#composer [name=text]")
    composer.press_sequentially("are you", delay=50)

    expect(uma.status()).to_have_text("tara is typing…")
    expect(uma.status()).to_have_attribute("data-state", "typing")
    expect(uma.listed("tara").locator(".preview")).to_have_text("typing…")
    screenshot(uma.page, "typing")

    # Seven seconds of steady typing: one Typing frame every 3 seconds, and
    # the indicator stays on past its 6-second time to live.
    for _ in range(14):
        composer.press_sequentially(".", delay=0)
        tara.page.wait_for_timeout(500)
    sent = tara.page.evaluate("() => window.typingSent")
    assert sent.count(True) in (3, 4), sent
    assert False not in sent
    expect(uma.status()).to_have_text("tara is typing…")

    # Leaving the composer stops the indicator.
    tara.page.locator("#thread-title").click()
    expect(uma.status()).to_have_attribute("data-state", "online")
    assert tara.page.evaluate("() => window.typingSent.at(-1)") is False

    # Sending ends it too: the message arrives and the indicator goes.
    composer.press("End")
    composer.press_sequentially(" now?", delay=50)
    expect(uma.status()).to_have_attribute("data-state", "typing")
    tara.page.press("#composer [name=text]", "Enter")
    expect(uma.bubbles("are you" + "." * 14 + " now?")).to_have_count(1)
    expect(uma.status()).to_have_attribute("data-state", "online")

    # Typing that pauses counts as stopped after 5 seconds.
    composer.press_sequentially("hm", delay=50)
    expect(uma.status()).to_have_attribute("data-state", "typing")
    tara.page.wait_for_function("() => window.typingSent.at(-1) === false")
    expect(uma.status()).to_have_attribute("data-state", "online")


def test_stranger_typing_is_not_shown(
    users: MakeUser, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    """A one-way message makes no peers: typing and presence stay private."""
    cleo, dave = users("cleo"), users("dave")
    cleo.open_chat("dave")
    cleo.send("hello, stranger")
    dave.open_conversation("cleo")
    expect(dave.bubbles("hello, stranger")).to_have_count(1)

    # Sending the first message paused typing to dave already: resume it.
    paused = "window.switchboardChat.typingSender.pausedUntil"
    cleo.page.evaluate(f"() => {paused}.clear()")
    cleo.page.locator("#composer [name=text]").press_sequentially("still there?")

    # The server rejects the Typing frame, and the page stops sending them.
    cleo.page.wait_for_function(f"() => {paused}.size === 1")
    dave.page.wait_for_timeout(500)
    expect(dave.status()).to_have_text("")
    expect(cleo.status()).to_have_text("")
    expect(dave.listed("cleo").locator(".presence")).to_have_count(0)

    # The same at the protocol level, from a client that never wrote to dave.
    dave_id = dave.page.evaluate("() => window.switchboardChat.session.userId")
    _, token = create_user(web_server.base_url, "eve")
    eve = RawClient(web_server.tcp_address)
    eve.connect(token)
    eve.send(pb.Typing(to=dave_id, active=True))
    error = eve.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == FORBIDDEN
    expect(dave.status()).to_have_text("")
    screenshot(dave.page, "stranger")


def test_presence_online_then_last_seen(
    users: MakeUser, browser: Browser, screenshot: Screenshot
) -> None:
    vera, walt = users("vera"), users("walt")
    make_peers(vera, walt)

    expect(walt.status()).to_have_attribute("data-state", "online")
    dot = walt.listed("vera").locator(".presence")
    expect(dot).to_have_class("presence online")
    screenshot(walt.page, "online")

    vera.page.context.close()

    expect(walt.status()).to_have_attribute("data-state", "offline")
    expect(walt.status()).to_have_text(re.compile(r"^last seen today at \d\d:\d\d$"))
    expect(dot).to_have_class("presence offline")
    expect(dot).to_have_attribute("title", re.compile("^last seen"))
    screenshot(walt.page, "last-seen")

    context = browser.new_context()
    ChatPage(context.new_page(), vera.base_url, "vera").log_in()
    expect(walt.status()).to_have_attribute("data-state", "online")
    expect(dot).to_have_class("presence online")
    context.close()


def test_read_receipts_one_to_one(
    users: MakeUser, browser: Browser, screenshot: Screenshot
) -> None:
    xena, yuri = users("xena"), users("yuri")
    xena.open_chat("yuri")
    xena.send("are you there?")
    expect(xena.mine("are you there?")).to_have_attribute("data-read", "sent")
    context = browser.new_context()
    yuri_laptop = ChatPage(context.new_page(), yuri.base_url, "yuri").log_in()

    for device in (yuri, yuri_laptop):
        expect(device.listed("xena").locator(".unread")).to_have_text("1")
    screenshot(yuri.page, "unread")

    yuri.open_conversation("xena")

    expect(xena.mine("are you there?")).to_have_attribute("data-read", "read")
    expect(xena.mine("are you there?").locator(".receipt")).to_have_text(" · read")
    expect(yuri.listed("xena").locator(".unread")).to_have_count(0)
    # The read entry reaches yuri's other device, whose count drops too.
    expect(yuri_laptop.listed("xena").locator(".unread")).to_have_count(0)
    screenshot(xena.page, "read")

    # A message to an open, visible conversation is read as it arrives.
    xena.send("great")
    expect(yuri.bubbles("great")).to_have_count(1)
    expect(xena.mine("great")).to_have_attribute("data-read", "read")

    # A hidden page reads nothing until it is visible again.
    hide(yuri, True)
    xena.send("one more thing")
    expect(yuri.bubbles("one more thing")).to_have_count(1)
    expect(yuri.listed("xena").locator(".unread")).to_have_text("1")
    expect(yuri_laptop.listed("xena").locator(".unread")).to_have_text("1")
    yuri.page.wait_for_timeout(500)
    expect(xena.mine("one more thing")).to_have_attribute("data-read", "sent")
    hide(yuri, False)
    expect(xena.mine("one more thing")).to_have_attribute("data-read", "read")
    expect(yuri_laptop.listed("xena").locator(".unread")).to_have_count(0)
    context.close()


def test_read_receipt_after_reload(users: MakeUser) -> None:
    """The peer's read position also comes from the conversation list."""
    zoe, adam = users("zoe"), users("adam")
    zoe.open_chat("adam")
    zoe.send("read me later")
    adam.open_conversation("zoe")
    expect(zoe.mine("read me later")).to_have_attribute("data-read", "read")

    zoe.page.reload()
    expect(zoe.state()).to_have_attribute("data-state", "online")
    zoe.open_conversation("adam")
    expect(zoe.mine("read me later")).to_have_attribute("data-read", "read")


def test_group_read_counts(
    users: MakeUser, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    gwen, hank, ivan = users("gwen"), users("hank"), users("ivan")
    gwen.page.click(".new-group summary")
    gwen.page.fill("#new-group [name=name]", "readers")
    gwen.page.fill("#new-group [name=members]", "hank, ivan")
    gwen.page.click("#new-group button")
    expect(gwen.page.locator("#thread-title")).to_have_text("readers")
    gwen.send("meeting at five")

    receipt = gwen.mine("meeting at five").locator(".receipt")
    expect(receipt).to_have_text(" · read by 0 of 2")
    for member in (hank, ivan):
        expect(member.listed("readers").locator(".unread")).to_have_text("1")

    hank.open_conversation("readers")
    expect(receipt).to_have_text(" · read by 1 of 2")
    expect(gwen.mine("meeting at five")).to_have_attribute("data-read", "sent")

    ivan.open_conversation("readers")
    expect(receipt).to_have_text(" · read by 2 of 2")
    expect(gwen.mine("meeting at five")).to_have_attribute("data-read", "read")
    screenshot(gwen.page, "read-by-all")

    # Typing in a group shows to the other members.
    hank.page.locator("#composer [name=text]").press_sequentially("ok", delay=50)
    for member in (gwen, ivan):
        expect(member.status()).to_have_text("hank is typing…")
        expect(member.listed("readers").locator(".preview")).to_have_text("typing…")

    # The server's own count agrees with the page.
    token = gwen.page.evaluate("() => window.switchboardChat.session.token")
    group = gwen.page.evaluate("() => window.switchboardChat.open")
    message_id = int(gwen.mine("meeting at five").get_attribute("data-id") or 0)
    response = httpx.get(
        f"{web_server.base_url}/v1/groups/{group.removeprefix('g:')}/reads",
        params={"id": message_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    expected = {"id": message_id, "read": 2, "members": 2}
    assert response.json()["reads"] == [expected]
