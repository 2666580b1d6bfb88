"""Authorization rules, each checked against a real server process.

docs/reliability.md lists every rule with its test, including the ones
tested elsewhere (token bound to its device, logout, expiry, signed URLs).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.client import Client, ClientOptions, ClientState, MemoryStateStore
from switchboard.client.errors import Forbidden, InvalidCredentials, Unauthorized
from switchboard.errors import ErrorCode
from switchboard.protocol import pb
from switchboard.protocol.frames import FrameType
from tests.integration.test_cli import ok, run_cli
from tests.support.rawclient import RawClient, close_all, create_user
from tests.support.server import ServerProcess

ADMIN = "root"
OLD = "old-password\n"
NEW = "new-password\n"
SETTINGS = {
    "SWITCHBOARD_ADMINS": ADMIN,
    "SWITCHBOARD_SEND_RATE": "0",
    "SWITCHBOARD_HEARTBEAT": "10",
}


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", SETTINGS)
    server.start()
    yield server
    close_all()
    server.terminate()


class Api:
    """HTTP calls with one user's bearer token."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.base_url = server.base_url
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            self.base_url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )


def users(server: ServerProcess, *names: str) -> dict[str, tuple[int, Api]]:
    """Create accounts; return {name: (user id, Api)}."""
    made = {}
    for name in names:
        user_id, token = create_user(server.base_url, name)
        made[name] = (user_id, Api(server, token))
    return made


def send(api: Api, client_id: int, **fields: Any) -> httpx.Response:
    return api.call(
        "POST", "/v1/messages", {"client_id": client_id, "text": "hi", **fields}
    )


# Messages and inboxes.


def test_sender_is_the_token_user(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve")
    ann_id, _ = people["ann"]
    _, bob = people["bob"]
    eve_id, eve = people["eve"]
    # A "from" field in the request is ignored: the token names the sender.
    response = send(eve, 1, to="bob", **{"from": "ann", "from_id": ann_id})
    assert response.status_code == 201, response.text

    history = bob.call("GET", "/v1/conversations/ann/messages").json()
    assert history["messages"] == []
    history = bob.call("GET", "/v1/conversations/eve/messages").json()
    assert [m["from_id"] for m in history["messages"]] == [eve_id]


def test_sync_returns_only_own_inbox(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve")
    _, ann = people["ann"]
    _, eve = people["eve"]
    assert send(ann, 1, to="bob").status_code == 201

    client = RawClient(auth_server.tcp_address)
    connected = client.connect(eve.token)
    assert list(connected.sync.messages) == []
    client.send(pb.SyncRequest(after_seq=0, limit=100))
    response = client.expect(FrameType.SYNC_RESPONSE)
    assert isinstance(response, pb.SyncResponse)
    assert list(response.messages) == []


def test_history_shows_only_own_conversations(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve")
    _, ann = people["ann"]
    _, eve = people["eve"]
    assert send(ann, 1, to="bob").status_code == 201
    # Eve requests the conversation with bob: hers with bob is empty, and
    # ann's is not reachable under any name.
    for peer in ("bob", "ann"):
        response = eve.call("GET", f"/v1/conversations/{peer}/messages")
        assert response.status_code == 200
        assert response.json()["messages"] == []
    found = eve.call("GET", "/v1/search?q=hi")
    assert found.status_code == 200, found.text
    assert found.json()["messages"] == []


def test_other_users_message_cannot_be_changed(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob")
    _, ann = people["ann"]
    _, bob = people["bob"]
    message_id = send(ann, 1, to="bob").json()["id"]
    recall = bob.call("POST", f"/v1/messages/{message_id}/recall")
    assert recall.status_code == 403, recall.text
    edit = bob.call("PATCH", f"/v1/messages/{message_id}", {"text": "forged"})
    assert edit.status_code == 403, edit.text
    history = ann.call("GET", "/v1/conversations/bob/messages").json()
    assert [m["text"] for m in history["messages"]] == ["hi"]


# Groups.


def test_non_member_cannot_use_group(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve")
    _, ann = people["ann"]
    _, eve = people["eve"]
    group = ann.call("POST", "/v1/groups", {"name": "g", "members": ["bob"]}).json()
    group_id = group["id"]
    assert send(ann, 1, group=group_id).status_code == 201

    requests = [
        ("GET", f"/v1/groups/{group_id}", None),
        ("GET", f"/v1/groups/{group_id}/messages", None),
        ("PATCH", f"/v1/groups/{group_id}", {"name": "mine"}),
        ("POST", f"/v1/groups/{group_id}/members", {"names": ["eve"]}),
        ("DELETE", f"/v1/groups/{group_id}/members/bob", None),
        ("PUT", f"/v1/groups/{group_id}/members/eve/role", {"role": "admin"}),
    ]
    for method, path, body in requests:
        response = eve.call(method, path, body)
        assert response.status_code == 403, (method, path, response.text)
    response = send(eve, 2, group=group_id)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"

    # Over the socket, too, and the group's message is not in eve's inbox.
    client = RawClient(auth_server.tcp_address)
    connected = client.connect(eve.token)
    assert list(connected.sync.messages) == []
    client.send(pb.Send(group=group_id, client_id=3, body=b"let me in"))
    error = client.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.NOT_A_MEMBER
    assert [g["id"] for g in eve.call("GET", "/v1/groups").json()["groups"]] == []


ROLE_CASES = [
    # (actor, method, path suffix, body, allowed)
    ("member", "PATCH", "", {"name": "renamed"}, False),
    ("member", "POST", "/members", {"names": ["fay"]}, False),
    ("member", "DELETE", "/members/dan", None, False),
    ("member", "DELETE", "/members/adam", None, False),
    ("member", "PUT", "/members/dan/role", {"role": "admin"}, False),
    ("admin", "PATCH", "", {"name": "renamed"}, True),
    ("admin", "POST", "/members", {"names": ["fay"]}, True),
    ("admin", "POST", "/members", {"names": ["fay"], "role": "admin"}, False),
    ("admin", "DELETE", "/members/dan", None, True),
    ("admin", "DELETE", "/members/owen", None, False),
    ("admin", "PUT", "/members/dan/role", {"role": "admin"}, False),
    ("owner", "PUT", "/members/dan/role", {"role": "admin"}, True),
    ("owner", "PUT", "/members/owen/role", {"role": "member"}, False),
    ("owner", "POST", "/members", {"names": ["fay"], "role": "owner"}, False),
    ("owner", "DELETE", "/members/adam", None, True),
]


@pytest.fixture(scope="module")
def role_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, tuple[int, Api]]]]:
    """One server for every role case; each case makes its own group."""
    directory = tmp_path_factory.mktemp("roles")
    server = ServerProcess(directory / "data", directory / "server.log", SETTINGS)
    server.start()
    yield server, users(server, "owen", "adam", "carl", "dan", "fay")
    server.terminate()


@pytest.mark.parametrize(("actor", "method", "suffix", "body", "allowed"), ROLE_CASES)
def test_group_changes_need_role(
    role_server: tuple[ServerProcess, dict[str, tuple[int, Api]]],
    actor: str,
    method: str,
    suffix: str,
    body: Any,
    allowed: bool,
) -> None:
    _, people = role_server
    owner = people["owen"][1]
    group = owner.call(
        "POST", "/v1/groups", {"name": "g", "members": ["adam", "carl", "dan"]}
    ).json()
    group_id = group["id"]
    promoted = owner.call(
        "PUT", f"/v1/groups/{group_id}/members/adam/role", {"role": "admin"}
    )
    assert promoted.status_code == 200, promoted.text
    api = {"owner": owner, "admin": people["adam"][1], "member": people["carl"][1]}

    response = api[actor].call(method, f"/v1/groups/{group_id}{suffix}", body)
    if allowed:
        assert response.status_code in (200, 204), response.text
        return
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    details = owner.call("GET", f"/v1/groups/{group_id}").json()
    assert details["name"] == "g"
    roles = {m["name"]: m["role"] for m in details["members"]}
    expected = {"owen": "owner", "adam": "admin", "carl": "member", "dan": "member"}
    assert roles == expected


# Media.


def upload(api: Api, data: bytes) -> str:
    response = httpx.post(
        api.base_url + "/v1/media",
        content=data,
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 201, response.text
    media_id: str = response.json()["id"]
    return media_id


def send_media(
    token: str, server: ServerProcess, media_id: str, to: int = 0, group: int = 0
) -> None:
    """Send a media message naming ``media_id`` to user ``to`` or ``group``."""
    body = json.dumps(
        {"media": media_id, "content_type": "text/plain", "size": 5}
    ).encode()
    client = RawClient(server.tcp_address)
    client.connect(token)
    client.send(pb.Send(client_id=1, content_type=1, body=body, to=to, group=group))
    ack = client.expect(FrameType.SEND_ACK, skip=(FrameType.MESSAGE,))
    assert isinstance(ack, pb.SendAck)
    client.close()


def url_status(api: Api, media_id: str) -> int:
    return api.call("GET", f"/v1/media/{media_id}/url").status_code


def test_media_urls_only_for_those_sent_it(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve", "carl", "gus")
    _, ann = people["ann"]
    bob_id, bob = people["bob"]
    _, eve = people["eve"]
    carl_id, carl = people["carl"]
    _, gus = people["gus"]
    media_id = upload(ann, b"ann's secret file")
    assert url_status(ann, media_id) == 200

    # Knowing the id is not enough: the response is the one for an unknown id.
    response = eve.call("GET", f"/v1/media/{media_id}/url")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "media_not_found"
    # A message from a user who does not have the file grants nothing.
    send_media(eve.token, auth_server, media_id, to=carl_id)
    assert url_status(eve, media_id) == 404
    assert url_status(carl, media_id) == 404

    # The recipient of the uploader's message may, and so may anyone who
    # uploads the same bytes.
    send_media(ann.token, auth_server, media_id, to=bob_id)
    assert url_status(bob, media_id) == 200
    assert upload(gus, b"ann's secret file") == media_id
    assert url_status(gus, media_id) == 200
    assert url_status(eve, media_id) == 404


def test_media_urls_for_group_members(auth_server: ServerProcess) -> None:
    people = users(auth_server, "ann", "bob", "eve")
    _, ann = people["ann"]
    _, bob = people["bob"]
    _, eve = people["eve"]
    group = ann.call("POST", "/v1/groups", {"name": "g", "members": ["bob"]}).json()
    media_id = upload(ann, b"for the group")
    send_media(ann.token, auth_server, media_id, group=group["id"])
    assert url_status(bob, media_id) == 200
    assert url_status(eve, media_id) == 404


# Tokens.


def test_password_change_revokes_other_tokens(auth_server: ServerProcess) -> None:
    _, phone_token = create_user(auth_server.base_url, "ann", device="phone")
    laptop = httpx.post(
        auth_server.base_url + "/v1/sessions",
        json={"name": "ann", "password": "password-ann", "device": "laptop"},
    ).json()["token"]
    live = RawClient(auth_server.tcp_address)
    live.connect(laptop, device="laptop")

    phone = Api(auth_server, phone_token)
    wrong = phone.call(
        "PUT",
        "/v1/accounts/current/password",
        {"current_password": "wrong-one", "new_password": "new-password-1"},
    )
    assert wrong.status_code == 401
    changed = phone.call(
        "PUT",
        "/v1/accounts/current/password",
        {"current_password": "password-ann", "new_password": "new-password-1"},
    )
    assert changed.status_code == 204, changed.text

    # The laptop's live connection is closed, and its token refused.
    error = live.expect(FrameType.ERROR)
    assert isinstance(error, pb.Error)
    assert error.code == ErrorCode.TOKEN_REVOKED
    live.expect_closed()
    assert Api(auth_server, laptop).call("GET", "/v1/groups").status_code == 401
    again = RawClient(auth_server.tcp_address)
    again.send(pb.Connect(version=1, token=laptop, device="laptop"))
    refused = again.expect(FrameType.ERROR)
    assert isinstance(refused, pb.Error)
    assert refused.code == ErrorCode.UNAUTHORIZED
    # The token that changed the password still works; the old password not.
    assert phone.call("GET", "/v1/groups").status_code == 200
    old = httpx.post(
        auth_server.base_url + "/v1/sessions",
        json={"name": "ann", "password": "password-ann", "device": "laptop"},
    )
    assert old.status_code == 401


async def test_sdk_password_change(auth_server: ServerProcess) -> None:
    def client() -> Client:
        return Client(
            auth_server.base_url,
            state=MemoryStateStore(ClientState()),
            options=ClientOptions(backoff_base=0.05, backoff_cap=0.5),
        )

    first, second = client(), client()
    try:
        await first.create_account("ann", "password-ann")
        await first.login("ann", "password-ann", device="one")
        await second.login("ann", "password-ann", device="two")
        with pytest.raises(InvalidCredentials):
            await first.change_password("not-the-password", "new-password-1")
        await first.change_password("password-ann", "new-password-1")
        await first.get_user("ann")
        with pytest.raises(Unauthorized):
            await second.get_user("ann")
    finally:
        await first.close()
        await second.close()


def test_tokens_stored_only_hashed(auth_server: ServerProcess) -> None:
    tokens = [create_user(auth_server.base_url, name)[1] for name in ("ann", "bob")]
    database = auth_server.data_dir / "switchboard.db"
    with sqlite3.connect(database) as conn:
        stored = {row[0] for row in conn.execute("SELECT token_hash FROM sessions")}
    assert stored == {hashlib.sha256(t.encode()).digest() for t in tokens}
    # No file of the data directory contains a token, as text or as bytes.
    for path in auth_server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for token in tokens:
                assert token.encode() not in data, path


# Admin rights.


def test_admin_name_cannot_be_registered(auth_server: ServerProcess) -> None:
    response = httpx.post(
        auth_server.base_url + "/v1/accounts",
        json={"name": ADMIN, "password": "password-root"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "name_reserved"
    forged = httpx.post(
        auth_server.base_url + "/v1/accounts",
        json={"name": ADMIN, "password": "password-root"},
        headers={"X-Admin-Key": "00" * 32},
    )
    assert forged.status_code == 403
    _, eve = create_user(auth_server.base_url, "eve")
    stats = Api(auth_server, eve).call("GET", "/v1/admin/stats")
    assert stats.status_code == 403


def test_admin_created_with_admin_key(auth_server: ServerProcess) -> None:
    key_file = auth_server.data_dir / "admin.key"
    assert key_file.stat().st_mode & 0o077 == 0
    _, token = create_user(auth_server.base_url, ADMIN, admin_key=key_file.read_bytes())
    stats = Api(auth_server, token).call("GET", "/v1/admin/stats")
    assert stats.status_code == 200, stats.text


async def test_sdk_admin_account_needs_key(auth_server: ServerProcess) -> None:
    client = Client(auth_server.base_url, state=MemoryStateStore(ClientState()))
    try:
        with pytest.raises(Forbidden):
            await client.create_account(ADMIN, "password-root")
        key = (auth_server.data_dir / "admin.key").read_bytes()
        user = await client.create_account(ADMIN, "password-root", admin_key=key)
        assert user.name == ADMIN
    finally:
        await client.close()


# The command line.


def test_cli_password_change(auth_server: ServerProcess, tmp_path: Path) -> None:
    url = auth_server.base_url
    phone, laptop = tmp_path / "phone", tmp_path / "laptop"
    ok(run_cli(phone, url, "account", "create", "ann", "--password-stdin", stdin=OLD))
    for home in (phone, laptop):
        ok(run_cli(home, url, "login", "ann", "--password-stdin", stdin=OLD))

    wrong_current = "wrong-password\n" + NEW
    wrong = run_cli(phone, url, "password", "--password-stdin", stdin=wrong_current)
    assert wrong.returncode != 0
    output = ok(run_cli(phone, url, "password", "--password-stdin", stdin=OLD + NEW))
    assert "other devices are logged out" in output

    assert run_cli(laptop, url, "inbox").returncode != 0
    ok(run_cli(phone, url, "inbox"))
    ok(run_cli(laptop, url, "login", "ann", "--password-stdin", stdin=NEW))
    ok(run_cli(laptop, url, "inbox"))


def test_cli_admin_account_needs_key_file(
    auth_server: ServerProcess, tmp_path: Path
) -> None:
    url = auth_server.base_url
    home = tmp_path / "operator"
    create = ["account", "create", ADMIN, "--password-stdin"]
    refused = run_cli(home, url, *create, stdin=OLD)
    assert refused.returncode != 0
    assert "reserved" in refused.stderr
    key_file = str(auth_server.data_dir / "admin.key")
    ok(run_cli(home, url, *create, "--admin-key-file", key_file, stdin=OLD))
