"""Groups through the SDK against a real server: management, sends, notices."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from switchboard.client import (
    NOTICE,
    ApiError,
    Client,
    Forbidden,
    GroupNotFound,
    InvalidRequest,
    Message,
    SendRejected,
    UserNotFound,
)
from switchboard.errors import ErrorCode
from tests.integration.conftest import ClientFactory, password_of
from tests.support.server import ServerProcess


async def messages_until(
    client: Client, count: int, within: float = 10.0
) -> list[Message]:
    received = []
    async with asyncio.timeout(within):
        for _ in range(count):
            received.append(await client.next_message())
    return received


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_group_lifecycle(clients: ClientFactory, transport: str) -> None:
    alice = await clients("alice", transport=transport)
    bob = await clients("bob", transport=transport)
    carol = await clients("carol", transport=transport)

    group = await alice.create_group("friends", ["bob"])
    assert group.name == "friends"
    assert [(m.name, m.role) for m in group.members] == [
        ("alice", "owner"),
        ("bob", "member"),
    ]
    group = await alice.add_group_members(group.id, ["carol"], role="admin")
    assert [m.role for m in group.members] == ["owner", "member", "admin"]
    sent = await bob.send_group(group.id, "hello, group", mentions=["carol"])
    assert sent.group_id == group.id
    assert sent.recipient_id == 0

    # Carol joined after the creation: she gets her addition, then the text.
    added, text = await messages_until(carol, 2)
    assert added.content_type == NOTICE
    assert added.notice is not None
    assert added.notice.event == "member_added"
    assert added.notice.user_ids == (carol.user_id,)
    assert added.notice.role == "admin"
    assert added.group_name == "friends"
    assert (text.text, text.sender_name, text.group_id) == (
        "hello, group",
        "bob",
        group.id,
    )
    assert text.mentions == (carol.user_id,)
    assert text.peer_id == 0

    renamed = await carol.rename_group(group.id, "best friends")
    assert renamed.name == "best friends"
    await alice.set_group_role(group.id, "bob", "admin")
    await bob.leave_group(group.id)
    await alice.remove_group_member(group.id, "carol")
    assert [m.name for m in await alice.group_members(group.id)] == ["alice"]
    assert [g.id for g in await bob.groups()] == []

    events = [m.notice.event for m in await messages_until(alice, 7) if m.notice]
    assert events == [
        "group_created",
        "member_added",
        "group_renamed",
        "role_changed",
        "member_left",
        "member_removed",
    ]


async def test_group_history_pages(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    group = await alice.create_group("team", ["bob"])
    for number in range(3):
        await bob.send_group(group.id, f"m{number}")

    page = await alice.group_history(group.id, limit=2)
    assert [m.text for m in page.messages] == ["m2", "m1"]
    assert page.has_more
    assert all(m.group_name == "team" for m in page.messages)
    older = await alice.group_history(group.id, before=page.messages[-1].id)
    assert [m.text for m in older.messages] == ["m0", None]
    assert older.messages[-1].notice is not None
    assert not older.has_more
    # Each message carries its seq in the reader's inbox.
    assert [m.seq for m in page.messages] == [4, 3]


async def test_group_errors(clients: ClientFactory) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    await clients("carol")
    group = await alice.create_group("private", [])

    with pytest.raises(GroupNotFound):
        await alice.group(999)
    with pytest.raises(Forbidden):
        await bob.group(group.id)
    with pytest.raises(Forbidden):
        await bob.add_group_members(group.id, ["carol"])
    with pytest.raises(UserNotFound):
        await alice.create_group("x", ["nobody"])
    with pytest.raises(InvalidRequest):
        await alice.create_group("two\nlines", [])
    with pytest.raises(Forbidden):
        await alice.leave_group(group.id)
    await alice.add_group_members(group.id, ["bob"])
    with pytest.raises(ApiError) as already:
        await alice.add_group_members(group.id, ["bob"])
    assert (already.value.status, already.value.code) == (409, "already_member")

    carol = await clients("carol", "d2")
    with pytest.raises(SendRejected) as not_member:
        await carol.send_group(group.id, "let me in")
    assert not_member.value.code is ErrorCode.NOT_A_MEMBER
    with pytest.raises(SendRejected) as unknown:
        await alice.send_group(999, "hi")
    assert unknown.value.code is ErrorCode.GROUP_NOT_FOUND
    with pytest.raises(SendRejected) as mention:
        await alice.send_group(group.id, "hi", mentions=["carol"])
    assert mention.value.code is ErrorCode.INVALID_MESSAGE


async def test_group_send_over_http(
    server: ServerProcess, clients: ClientFactory
) -> None:
    alice = await clients("alice")
    bob = await clients("bob")
    group = await alice.create_group("http", ["bob"])
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        login = await http.post(
            "/v1/sessions",
            json={"name": "alice", "password": password_of("alice"), "device": "web"},
        )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}

    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        response = await http.post(
            "/v1/messages",
            json={
                "group": group.id,
                "text": "over http",
                "client_id": 7,
                "mentions": ["bob"],
            },
        )
        assert response.status_code == 201, response.text
        again = await http.post(
            "/v1/messages",
            json={
                "group": group.id,
                "text": "over http",
                "client_id": 7,
                "mentions": ["bob"],
            },
        )
        assert again.json()["duplicate"] is True
        bad = [
            ({"group": group.id, "to": "bob", "text": "x", "client_id": 8}, 400),
            ({"text": "x", "client_id": 8}, 400),
            ({"to": "bob", "text": "x", "client_id": 8, "mentions": ["bob"]}, 400),
            ({"group": 999, "text": "x", "client_id": 8}, 404),
            (
                {"group": group.id, "text": "x", "client_id": 8, "mentions": ["zed"]},
                404,
            ),
        ]
        for body, status in bad:
            response = await http.post("/v1/messages", json=body)
            assert response.status_code == status, (body, response.text)

    _, message = await messages_until(bob, 2)
    assert (message.text, message.group_id, message.mentions) == (
        "over http",
        group.id,
        (bob.user_id,),
    )
