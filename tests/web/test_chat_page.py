"""The web chat client at /app: browsers chatting with each other and the CLI.

Every user is a separate browser context (its own localStorage, so its own
device) against one real server. Account names differ between tests, since
the server is shared by the module.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.support.rawclient import RawClient, create_user
from tests.support.server import ServerProcess
from tests.support.web import ChatPage, MakeUser, Screenshot

expect.set_options(timeout=10_000)


def cli(home: Path, server: ServerProcess, *args: str, stdin: str = "") -> str:
    """Run the switchboard command and return its output; fail on an error."""
    env = {
        **os.environ,
        "SWITCHBOARD_HOME": str(home),
        "SWITCHBOARD_SERVER": server.base_url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"switchboard {args[0]}: {result.stderr}"
    return result.stdout


def admin_stats(server: ServerProcess) -> dict[str, object]:
    token = httpx.post(
        server.base_url + "/v1/sessions",
        json={"name": "root", "password": "password-root", "device": "stats"},
    ).json()["token"]
    response = httpx.get(
        server.base_url + "/v1/admin/stats",
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return response.json()


def cursor_of(page: Page) -> int:
    state = page.evaluate(
        "() => JSON.parse(localStorage.getItem(window.switchboardChat.local.key))"
    )
    return int(state["cursor"])


def inbox_head(page: Page) -> int:
    """Return the head of the page user's inbox, as the server reports it."""
    head = page.evaluate(
        """async () => {
          const token = window.switchboardChat.session.token;
          const response = await fetch("/v1/conversations?limit=1", {
            headers: { Authorization: `Bearer ${token}` },
          });
          return (await response.json()).head_seq;
        }"""
    )
    return int(head)


def test_two_browsers_chat(
    users: MakeUser, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    httpx.post(
        web_server.base_url + "/v1/accounts",
        json={"name": "root", "password": "password-root"},
        headers={"X-Admin-Key": (web_server.data_dir / "admin.key").read_bytes().hex()},
    )
    ann, bob = users("ann"), users("bob")

    ann.open_chat("bob")
    ann.send("hello bob")
    bob.open_conversation("ann")
    expect(bob.bubbles("hello bob")).to_have_count(1)
    bob.send("hi ann!")

    expect(ann.bubbles("hi ann!")).to_have_count(1)
    expect(ann.bubbles("hello bob")).to_have_count(1)
    expect(ann.page.locator("#messages .message.mine .text")).to_have_text(
        ["hello bob"]
    )
    expect(ann.pending()).to_have_count(0)
    stats = admin_stats(web_server)
    assert stats["by_platform"]["web"] >= 2  # type: ignore[index]
    screenshot(ann.page, "ann")
    screenshot(bob.page, "bob")


def test_new_device_syncs_conversations(users: MakeUser, browser: Browser) -> None:
    pia, quin = users("pia"), users("quin")
    pia.open_chat("quin")
    pia.send("first device")
    quin.open_conversation("pia")
    quin.send("reply to the first device")
    expect(pia.bubbles("reply to the first device")).to_have_count(1)
    # The open conversation is read: pia's inbox holds the two messages and
    # the read entry.
    pia.page.wait_for_function("() => window.switchboardChat.client.inbox.cursor === 3")

    context = browser.new_context()
    second = ChatPage(context.new_page(), pia.base_url, "pia").log_in()

    second.open_conversation("quin")
    expect(second.bubbles("first device")).to_have_count(1)
    expect(second.bubbles("reply to the first device")).to_have_count(1)
    expect(second.page.locator("#messages .message")).to_have_count(2)
    assert cursor_of(second.page) == 3
    context.close()


def test_server_conversation_list_is_used(users: MakeUser) -> None:
    """A server with GET /v1/conversations supplies names and unread counts."""
    rosa = users("rosa")
    listing = {
        "conversations": [
            {
                "peer_id": 0,
                "group_id": 4242,
                "name": "book club",
                "unread": 3,
                "read_id": 0,
                "peer_read_id": 0,
                "last": {
                    "id": 99,
                    "seq": 7,
                    "from": "sam",
                    "from_id": 77,
                    "content_type": 0,
                    "text": "chapter 4 tonight",
                    "truncated": False,
                    "sent_at": 1796385600123,
                },
            }
        ],
        "has_more": False,
        "head_seq": 7,
        "total_unread": 3,
    }
    rosa.page.route(
        "**/v1/conversations?*",
        lambda route: route.fulfill(json=listing),
    )

    rosa.page.reload()

    item = rosa.page.locator("#conversations li[data-key='g:4242']")
    expect(item.locator(".title")).to_have_text("book club")
    expect(item.locator(".unread")).to_have_text("3")
    expect(item.locator(".preview")).to_have_text("chapter 4 tonight")


def test_browser_chats_with_cli(
    users: MakeUser, web_server: ServerProcess, tmp_path: Path, screenshot: Screenshot
) -> None:
    home = tmp_path / "cli-home"
    cli(
        home,
        web_server,
        "account",
        "create",
        "carl",
        "--password-stdin",
        stdin="password-carl\n",
    )
    cli(home, web_server, "login", "carl", "--password-stdin", stdin="password-carl\n")
    dora = users("dora")

    cli(home, web_server, "send", "--to", "dora", "hello from the command line")

    item = dora.page.locator("#conversations li .title", has_text="carl")
    expect(item).to_have_count(1)
    dora.open_conversation("carl")
    expect(dora.bubbles("hello from the command line")).to_have_count(1)
    dora.send("hello from the browser")
    expect(dora.acknowledged("hello from the browser")).to_have_count(1)
    received = [
        json.loads(line)
        for line in cli(home, web_server, "inbox", "--json").splitlines()
    ]
    texts = [message.get("text") for message in received]
    assert "hello from the browser" in texts
    screenshot(dora.page, "dora")


def test_group_chat_in_browsers(users: MakeUser, screenshot: Screenshot) -> None:
    erin, finn, gail = users("erin"), users("finn"), users("gail")

    erin.page.click(".new-group summary")
    erin.page.fill("#new-group [name=name]", "hikers")
    erin.page.fill("#new-group [name=members]", "finn, gail")
    erin.page.click("#new-group button")
    expect(erin.page.locator("#thread-title")).to_have_text("hikers")
    erin.send("trail at nine?")

    for member in (finn, gail):
        member.open_conversation("hikers")
        expect(member.bubbles("trail at nine?")).to_have_count(1)
        notice = member.page.locator("#messages .message.notice").first
        expect(notice).to_contain_text("erin created the group")
    expect(finn.page.locator("#messages .message .sender")).to_have_text(["erin"])
    finn.send("yes")
    expect(erin.bubbles("yes")).to_have_count(1)
    expect(gail.bubbles("yes")).to_have_count(1)
    senders = gail.page.locator("#messages .message .sender")
    expect(senders).to_have_text(["erin", "finn"])
    screenshot(gail.page, "gail")


def test_offline_user_sees_each_message_once(
    users: MakeUser, web_server: ServerProcess, screenshot: Screenshot
) -> None:
    hugo, iris = users("hugo"), users("iris")
    hugo.open_chat("iris")
    hugo.send("before the tunnel")
    iris.open_conversation("hugo")
    expect(iris.bubbles("before the tunnel")).to_have_count(1)

    hugo.page.context.set_offline(True)
    expect(hugo.state()).to_have_attribute("data-state", "offline")
    for number in range(1, 4):
        iris.send(f"from iris {number}")
    _, token = create_user(web_server.base_url, "jack")
    jack = RawClient(web_server.tcp_address)
    jack.connect(token)
    hugo_id = httpx.get(
        web_server.base_url + "/v1/users/hugo",
        headers={"Authorization": f"Bearer {token}"},
    ).json()["id"]
    jack.send(pb.Send(to=hugo_id, client_id=1, body=b"from jack"))
    jack.expect(FrameType.SEND_ACK)
    hugo.send("in the tunnel 1")
    hugo.send("in the tunnel 2")
    expect(hugo.pending()).to_have_count(2)
    screenshot(hugo.page, "offline")

    hugo.page.context.set_offline(False)

    expect(hugo.state()).to_have_attribute("data-state", "online")
    expect(hugo.pending()).to_have_count(0)
    for number in range(1, 4):
        expect(hugo.bubbles(f"from iris {number}")).to_have_count(1)
    for text in ("in the tunnel 1", "in the tunnel 2", "before the tunnel"):
        expect(hugo.bubbles(text)).to_have_count(1)
        expect(iris.bubbles(text)).to_have_count(1)
    hugo.open_conversation("jack")
    expect(hugo.bubbles("from jack")).to_have_count(1)
    screenshot(hugo.page, "back-online")

    # A reload shows the same messages, once each, from history and sync.
    hugo.page.reload()
    expect(hugo.state()).to_have_attribute("data-state", "online")
    hugo.open_conversation("iris")
    for text in ("before the tunnel", "from iris 1", "from iris 3", "in the tunnel 2"):
        expect(hugo.bubbles(text)).to_have_count(1)
    # Seven messages, and the read entries of the conversations hugo opened.
    head = inbox_head(hugo.page)
    assert head >= 9
    hugo.page.wait_for_function(
        f"() => window.switchboardChat.client.inbox.cursor === {head}"
    )
    assert cursor_of(hugo.page) == head


def test_lost_ack_resends_without_duplicate(users: MakeUser) -> None:
    kate, liam = users("kate"), users("liam")
    kate.open_chat("liam")
    # The first SendAck is dropped with its connection, after the server has
    # stored the message: the client must resend the same client_id.
    kate.page.evaluate(
        """() => {
          const connection = window.switchboardChat.client.connection;
          const handle = connection.handle.bind(connection);
          window.acksLost = 0;
          connection.handle = (frame) => {
            if (frame.type === 4 && window.acksLost === 0) {
              window.acksLost += 1;
              connection.drop("test drops the SendAck", true);
              return;
            }
            handle(frame);
          };
        }"""
    )

    kate.send("sent once")

    kate.page.wait_for_function("() => window.acksLost === 1")
    expect(kate.acknowledged("sent once")).to_have_count(1)
    expect(kate.pending()).to_have_count(0)
    expect(kate.bubbles("sent once")).to_have_count(1)
    liam.open_conversation("kate")
    expect(liam.bubbles("sent once")).to_have_count(1)
    kate.send("and then another")
    expect(liam.bubbles("and then another")).to_have_count(1)
    expect(liam.bubbles("sent once")).to_have_count(1)
    expect(kate.bubbles("sent once")).to_have_count(1)


def test_picture_is_sent_and_shown(
    users: MakeUser, tmp_path: Path, screenshot: Screenshot
) -> None:
    mona, nick = users("mona"), users("nick")
    picture = tmp_path / "sunset.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (240, 120, 40)).save(buffer, "PNG")
    picture.write_bytes(buffer.getvalue())
    mona.open_chat("nick")

    mona.page.set_input_files("#attach", str(picture))

    nick.open_conversation("mona")
    image = nick.page.locator("#messages .message img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", "sunset.png")
    nick.page.wait_for_function(
        "() => { const img = document.querySelector('#messages .message img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    expect(mona.page.locator("#messages .message.mine img")).to_have_count(1)
    expect(nick.page.locator("#conversations li .preview")).to_have_text(["Photo"])
    screenshot(nick.page, "picture")


def test_wrong_password_is_reported(
    browser: Browser, web_server: ServerProcess
) -> None:
    create_user(web_server.base_url, "olga")
    context = browser.new_context()
    page = context.new_page()
    page.goto(web_server.base_url + "/app")

    page.fill("#login-form [name=name]", "olga")
    page.fill("#login-form [name=password]", "wrong-password")
    page.click("#login-form button[type=submit]")

    expect(page.locator("#login-error")).to_contain_text("invalid name or password")
    expect(page.locator("#chat-view")).to_be_hidden()
    context.close()
