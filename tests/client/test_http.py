"""HTTP API client: requests, responses and error mapping (mock transport)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest

from switchboard.client.errors import (
    ApiError,
    Forbidden,
    GroupNotFound,
    InvalidCredentials,
    InvalidRequest,
    NameTaken,
    NotLoggedIn,
    ServerUnreachable,
    Unauthorized,
    UserNotFound,
)
from switchboard.client.http import ApiClient
from switchboard.client.models import Gateway

Handler = Callable[[httpx.Request], httpx.Response]


def api(handler: Handler, token: str | None = "tok") -> ApiClient:
    return ApiClient(
        "http://server.test/", token=token, transport=httpx.MockTransport(handler)
    )


def error(status: int, code: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


async def test_login_sends_body_and_parses_token() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(
            200,
            json={"token": "t1", "user_id": 4, "device": "d", "expires_at": 99},
        )

    client = api(handler, token=None)
    login = await client.login("ann", "pw", "d", "ios")
    await client.aclose()
    assert login.token == "t1"
    assert login.user_id == 4
    assert requests[0].url.path == "/v1/sessions"
    assert json.loads(requests[0].content) == {
        "name": "ann",
        "password": "pw",
        "device": "d",
        "platform": "ios",
    }
    assert "authorization" not in requests[0].headers


async def test_bearer_token_is_sent() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"id": 2, "name": "bob"})

    client = api(handler, token="secret")
    user = await client.get_user("bob")
    await client.aclose()
    assert user.id == 2
    assert seen == ["Bearer secret"]


async def test_call_without_token_raises() -> None:
    client = api(lambda request: httpx.Response(200), token=None)
    with pytest.raises(NotLoggedIn):
        await client.get_user("bob")
    await client.aclose()


async def test_user_name_is_escaped() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return error(404, "user_not_found")

    client = api(handler)
    with pytest.raises(UserNotFound):
        await client.get_user("a/b c")
    await client.aclose()
    assert paths == ["/v1/users/a%2Fb%20c"]


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "invalid_credentials", InvalidCredentials),
        (401, "unauthorized", Unauthorized),
        (401, "something_new", Unauthorized),
        (409, "name_taken", NameTaken),
        (404, "user_not_found", UserNotFound),
        (422, "invalid_request", InvalidRequest),
        (400, "invalid_argument", InvalidRequest),
        (404, "group_not_found", GroupNotFound),
        (403, "not_a_member", Forbidden),
        (403, "forbidden", Forbidden),
        (403, "something_new", Forbidden),
        (418, "teapot", ApiError),
    ],
)
async def test_error_codes_map_to_exceptions(
    status: int, code: str, expected: type[ApiError]
) -> None:
    client = api(lambda request: error(status, code, "details here"))
    with pytest.raises(expected) as info:
        await client.create_account("ann", "password")
    await client.aclose()
    assert type(info.value) is expected
    assert info.value.status == status
    assert info.value.code == code
    assert info.value.message == "details here"


async def test_non_json_error_keeps_text() -> None:
    client = api(lambda request: httpx.Response(502, text="Bad gateway\nupstream"))
    with pytest.raises(ApiError) as info:
        await client.gateways()
    await client.aclose()
    assert info.value.status == 502
    assert info.value.message == "Bad gateway upstream"


async def test_connection_failure_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = api(handler)
    with pytest.raises(ServerUnreachable, match=r"http://server\.test.*refused"):
        await client.health()
    await client.aclose()


async def test_gateways_are_parsed() -> None:
    body = {
        "gateways": [
            {"transport": "tcp", "address": "h:1"},
            {"transport": "ws", "url": "ws://h:2/v1/ws"},
            {"transport": "quic"},
        ],
        "heartbeat": 30,
        "max_heartbeat": 600,
    }
    client = api(lambda request: httpx.Response(200, json=body))
    listing = await client.gateways()
    await client.aclose()
    assert listing.gateways == [Gateway("tcp", "h:1"), Gateway("ws", "ws://h:2/v1/ws")]
    assert listing.heartbeat == 30
    assert listing.max_heartbeat == 600


async def test_history_decodes_text_and_binary() -> None:
    body = {
        "messages": [
            {
                "id": 9,
                "from": "bob",
                "to": "ann",
                "from_id": 2,
                "to_id": 1,
                "content_type": 3,
                "body_b64": base64.b64encode(b"\x00\x01").decode(),
                "sent_at": 2000,
            },
            {
                "id": 8,
                "from": "ann",
                "to": "bob",
                "from_id": 1,
                "to_id": 2,
                "content_type": 0,
                "text": "hi",
                "sent_at": 1000,
            },
        ],
        "has_more": True,
    }
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(str(request.url.query, "ascii"))
        return httpx.Response(200, json=body)

    client = api(handler)
    page = await client.history("bob", my_id=1, before=10, limit=2)
    await client.aclose()
    assert queries == ["limit=2&before=10"]
    assert page.has_more
    binary, text = page.messages
    assert binary.body == b"\x00\x01"
    assert binary.text is None
    assert not binary.outgoing
    assert text.text == "hi"
    assert text.outgoing
    assert text.peer_name == "bob"


async def test_user_lookup_is_batched() -> None:
    batches: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [int(v) for v in request.url.params.get_list("id")]
        batches.append(len(ids))
        return httpx.Response(
            200, json={"users": [{"id": i, "name": f"u{i}"} for i in ids]}
        )

    client = api(handler)
    users = await client.get_users([*range(1, 251), 1, 2])
    await client.aclose()
    assert batches == [100, 100, 50]
    assert len(users) == 250
