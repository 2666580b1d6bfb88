"""Search over HTTP, the SDK and the CLI against a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from switchboard.client import InvalidRequest, UserNotFound
from tests.integration.conftest import ClientFactory
from tests.integration.test_cli import homes, json_lines, ok, run_cli, sign_up
from tests.support.server import ServerProcess

__all__ = ["homes"]


async def test_search_finds_only_own_messages(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    carol = await clients("carol")
    dave = await clients("dave")
    await alice.send("bob", "Dinner at the Café tonight?")
    await bob.send("alice", "dinner sounds good")
    await carol.send("dave", "secret dinner plans")
    group = await carol.create_group("cooks", ["dave"])
    await dave.send_group(group.id, "group dinner recipe")

    page = await alice.search("DINNER")
    assert [m.text for m in page.messages] == [
        "dinner sounds good",
        "Dinner at the Café tonight?",
    ]
    assert [m.seq for m in page.messages] == [2, 1]
    assert page.next_cursor is None
    assert [m.text for m in (await alice.search("cafe tonight")).messages] == [
        "Dinner at the Café tonight?"
    ]
    # Words only in other users' inboxes are never found.
    assert (await alice.search("secret")).messages == []
    assert (await alice.search("recipe")).messages == []
    assert (await bob.search("plans")).messages == []
    found = await dave.search("dinner")
    assert [(m.text, m.group_id, m.group_name) for m in found.messages] == [
        ("group dinner recipe", group.id, "cooks"),
        ("secret dinner plans", 0, None),
    ]


async def test_search_pages_and_filters(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    await clients("carol")
    for number in range(5):
        await alice.send("bob", f"status report {number}")
    await alice.send("carol", "status report for carol")

    first = await alice.search("report", limit=4)
    assert len(first.messages) == 4
    assert first.next_cursor is not None
    rest = await alice.search("report", cursor=first.next_cursor, limit=4)
    assert [m.text for m in rest.messages] == ["status report 1", "status report 0"]
    assert rest.next_cursor is None

    with_bob = await bob.search("status", peer="alice", limit=100)
    assert len(with_bob.messages) == 5
    with_carol = await alice.search("status", peer="carol")
    assert [m.text for m in with_carol.messages] == ["status report for carol"]
    with pytest.raises(UserNotFound):
        await alice.search("status", peer="nobody")
    with pytest.raises(InvalidRequest):
        await alice.search("!!!")
    with pytest.raises(InvalidRequest):
        await alice.search("status", cursor="not-a-cursor")


def test_search_over_http_rejects_bad_input(server: ServerProcess) -> None:
    url = server.base_url
    httpx.post(url + "/v1/accounts", json={"name": "ann", "password": "password-ann"})
    login = httpx.post(
        url + "/v1/sessions",
        json={"name": "ann", "password": "password-ann", "device": "d"},
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    for params, status in (
        ({}, 422),
        ({"q": ""}, 400),
        ({"q": "x" * 201}, 400),
        ({"q": "ok", "limit": 0}, 422),
        ({"q": "ok", "limit": 101}, 422),
        ({"q": "ok", "group": 0}, 422),
        ({"q": "ok", "cursor": "zzz"}, 400),
    ):
        response = httpx.get(url + "/v1/search", params=params, headers=headers)
        assert response.status_code == status, (params, response.text)
    assert httpx.get(url + "/v1/search", params={"q": "ok"}).status_code == 401
    response = httpx.get(url + "/v1/search", params={"q": "ok"}, headers=headers)
    assert response.json() == {"messages": []}


def test_cli_search(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    for name in ("alice", "bob", "carol"):
        sign_up(homes[name], url, name)
    ok(run_cli(homes["alice"], url, "send", "--to", "bob", "meet at noon"))
    ok(run_cli(homes["bob"], url, "send", "--to", "alice", "noon\nworks\x1b[2J"))
    ok(run_cli(homes["carol"], url, "send", "--to", "carol", "noon for carol"))

    lines = ok(run_cli(homes["alice"], url, "search", "noon")).splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("bob -> alice: noon\\nworks\\x1b[2J")
    assert lines[1].endswith("alice -> bob: meet at noon")
    found = json_lines(ok(run_cli(homes["alice"], url, "search", "noon", "--json")))
    assert [m["text"] for m in found] == ["noon\nworks\x1b[2J", "meet at noon"]

    first = run_cli(homes["alice"], url, "search", "noon", "--limit", "1")
    assert first.returncode == 0, first.stderr
    cursor = first.stderr.split("--cursor ")[1].split(")")[0]
    rest = ok(run_cli(homes["alice"], url, "search", "noon", "--cursor", cursor))
    assert rest.splitlines()[0].endswith("meet at noon")
    assert ok(run_cli(homes["alice"], url, "search", "noon", "--with", "carol")) == ""
    bad = run_cli(homes["alice"], url, "search", "...")
    assert bad.returncode == 1
    assert "no word" in bad.stderr
