"""HTTP API client: accounts, logins, users, history, conversations, reads,
changes to messages and gateway discovery.

Error responses (``{"error": {"code": ..., "message": ...}}``) become
:class:`~switchboard.client.errors.ApiError` subclasses, and failures to reach
the server become :class:`~switchboard.client.errors.ServerUnreachable`.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from switchboard.client.errors import (
    ApiError,
    NotLoggedIn,
    ServerUnreachable,
    api_error,
)
from switchboard.client.models import (
    Changed,
    Conversation,
    ConversationPage,
    Gateway,
    HistoryPage,
    Login,
    Message,
    ReadCount,
    SearchPage,
    User,
)

__all__ = ["ApiClient", "GatewayList", "history_message"]

logger = logging.getLogger("switchboard.client")

USER_LOOKUP_BATCH = 100
"""Most ids the server accepts in one ``GET /v1/users`` request."""


class GatewayList:
    """The response of ``GET /v1/gateways``.

    ``max_frame_size`` and ``max_body_size`` are the server's limits in
    bytes, or 0 when the server does not report them.
    """

    __slots__ = (
        "gateways",
        "heartbeat",
        "max_body_size",
        "max_frame_size",
        "max_heartbeat",
    )

    def __init__(
        self,
        gateways: list[Gateway],
        heartbeat: int,
        max_heartbeat: int,
        max_frame_size: int = 0,
        max_body_size: int = 0,
    ) -> None:
        self.gateways = gateways
        self.heartbeat = heartbeat
        self.max_heartbeat = max_heartbeat
        self.max_frame_size = max_frame_size
        self.max_body_size = max_body_size


class ApiClient:
    """Calls the Switchboard HTTP API at ``base_url``.

    ``token`` is sent as a bearer token by the calls that need one; calling
    those without a token raises NotLoggedIn.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, verify=verify
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # Accounts and logins.

    async def create_account(
        self, name: str, password: str, admin_key: bytes | None = None
    ) -> User:
        """Create an account; ``admin_key`` is needed for a name listed as admin."""
        headers = {} if admin_key is None else {"X-Admin-Key": admin_key.hex()}
        body = await self._request(
            "POST",
            "/v1/accounts",
            json={"name": name, "password": password},
            headers=headers,
        )
        return User(id=body["id"], name=body["name"])

    async def login(
        self, name: str, password: str, device: str, platform: str
    ) -> Login:
        body = await self._request(
            "POST",
            "/v1/sessions",
            json={
                "name": name,
                "password": password,
                "device": device,
                "platform": platform,
            },
        )
        return Login(
            token=body["token"],
            user_id=body["user_id"],
            device=body["device"],
            expires_at=body["expires_at"],
        )

    async def logout(self) -> None:
        """Revoke the token; the server closes this device's live connection."""
        await self._request("DELETE", "/v1/sessions/current", auth=True)

    async def change_password(self, current: str, new: str) -> None:
        """Change the password; the server revokes every other token of the user."""
        await self._request(
            "PUT",
            "/v1/accounts/current/password",
            json={"current_password": current, "new_password": new},
            auth=True,
        )

    # Users.

    async def get_user(self, name: str) -> User:
        """Return the user named ``name``; raise UserNotFound if there is none."""
        body = await self._request(
            "GET", f"/v1/users/{quote(name, safe='')}", auth=True
        )
        return User(id=body["id"], name=body["name"])

    async def get_users(self, ids: Iterable[int]) -> list[User]:
        """Return the users with these ids; unknown ids are left out."""
        unique = list(dict.fromkeys(ids))
        users: list[User] = []
        for start in range(0, len(unique), USER_LOOKUP_BATCH):
            batch = unique[start : start + USER_LOOKUP_BATCH]
            body = await self._request(
                "GET", "/v1/users", params=[("id", i) for i in batch], auth=True
            )
            users.extend(User(id=u["id"], name=u["name"]) for u in body["users"])
        return users

    # Messages.

    async def history(
        self, peer: str, my_id: int, *, before: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """Return a page of the conversation with ``peer``, newest first."""
        params: dict[str, int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        body = await self._request(
            "GET",
            f"/v1/conversations/{quote(peer, safe='')}/messages",
            params=params,
            auth=True,
        )
        messages = [history_message(item, my_id) for item in body["messages"]]
        return HistoryPage(messages=messages, has_more=bool(body["has_more"]))

    # Conversations and reads.

    async def conversations(
        self, my_id: int, *, limit: int = 50, before: int | None = None
    ) -> ConversationPage:
        """Return a page of the conversation list, most recent first."""
        params: dict[str, int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        body = await self._request("GET", "/v1/conversations", params=params, auth=True)
        conversations = [_conversation(item, my_id) for item in body["conversations"]]
        return ConversationPage(
            conversations=conversations,
            has_more=bool(body["has_more"]),
            head_seq=int(body["head_seq"]),
            total_unread=int(body["total_unread"]),
        )

    async def mark_read(
        self, *, peer: str | None, group_id: int, message_id: int | None
    ) -> Changed:
        """Read the conversation with ``peer`` (a name) or the group."""
        if peer is not None:
            path = f"/v1/conversations/{quote(peer, safe='')}/read"
        else:
            path = f"/v1/groups/{group_id}/read"
        body = await self._request(
            "POST", path, json={"message_id": message_id}, auth=True
        )
        return Changed(
            changed=int(body["seq"]) > 0,
            seq=int(body["seq"]),
            id=int(body.get("id", 0)),
            changed_at=int(body.get("changed_at", 0)),
            unread=int(body["unread"]),
            read_id=int(body["read_id"]),
        )

    async def read_counts(
        self, group_id: int, message_ids: list[int]
    ) -> list[ReadCount]:
        body = await self._request(
            "GET",
            f"/v1/groups/{group_id}/reads",
            params=[("id", i) for i in message_ids],
            auth=True,
        )
        return [
            ReadCount(int(item["id"]), int(item["read"]), int(item["members"]))
            for item in body["reads"]
        ]

    # Changes to messages.

    async def recall(self, message_id: int) -> Changed:
        body = await self._request(
            "POST", f"/v1/messages/{message_id}/recall", auth=True
        )
        return _changed(body)

    async def edit(self, message_id: int, text: str) -> Changed:
        body = await self._request(
            "PATCH", f"/v1/messages/{message_id}", json={"text": text}, auth=True
        )
        return _changed(body)

    async def delete(self, message_id: int) -> Changed:
        body = await self._request("DELETE", f"/v1/messages/{message_id}", auth=True)
        return _changed(body)

    async def search(
        self,
        text: str,
        my_id: int,
        *,
        cursor: str | None,
        limit: int,
        peer: str | None,
        group: int | None,
    ) -> SearchPage:
        """Return a page of the caller's messages that contain every word."""
        params: dict[str, str | int] = {"q": text, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if peer is not None:
            params["with"] = peer
        if group is not None:
            params["group"] = group
        body = await self._request("GET", "/v1/search", params=params, auth=True)
        messages = [history_message(item, my_id) for item in body["messages"]]
        return SearchPage(messages=messages, next_cursor=body.get("next_cursor"))

    # Discovery.

    async def gateways(self) -> GatewayList:
        body = await self._request("GET", "/v1/gateways")
        gateways: list[Gateway] = []
        for item in body.get("gateways", []):
            transport = item.get("transport")
            address = item.get("url") if transport == "ws" else item.get("address")
            if isinstance(transport, str) and isinstance(address, str):
                gateways.append(Gateway(transport, address))
        return GatewayList(
            gateways,
            int(body.get("heartbeat", 0)),
            int(body.get("max_heartbeat", 0)),
            int(body.get("max_frame_size", 0)),
            int(body.get("max_body_size", 0)),
        )

    async def health(self) -> None:
        """Raise ServerUnreachable or ApiError unless ``GET /healthz`` succeeds."""
        await self._request("GET", "/healthz")

    # Plumbing.

    async def request_json(
        self, method: str, path: str, *, json: Any = None, params: Any = None
    ) -> Any:
        """Send an authenticated request; return the parsed body, or None for
        an empty one. Raises the errors this class documents."""
        return await self._request(method, path, json=json, params=params, auth=True)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        auth: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = dict(headers or {})
        if auth:
            if not self.token:
                raise NotLoggedIn("not logged in: log in to get a token first")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = await self._http.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.base_url}: {_describe(exc)}"
            ) from exc
        logger.debug("%s %s -> %d", method, path, response.status_code)
        if response.status_code >= 400:
            raise _error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


def _error_from_response(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return api_error(
            response.status_code, str(error["code"]), str(error["message"])
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().replace("\n", " ")[:200]
        return ApiError(
            response.status_code, "http_error", text or response.reason_phrase
        )


def history_message(item: dict[str, Any], my_id: int) -> Message:
    """Build a Message from an item of a history response."""
    content_type = int(item.get("content_type", 0))
    if "body_b64" in item and item["body_b64"] is not None:
        body = base64.b64decode(item["body_b64"])
    else:
        body = str(item.get("text") or "").encode()
    sender_id = int(item["from_id"])
    return Message(
        id=int(item["id"]),
        seq=int(item.get("seq") or 0),
        sender_id=sender_id,
        recipient_id=int(item.get("to_id") or 0),
        sender_name=item.get("from"),
        recipient_name=item.get("to"),
        content_type=content_type,
        body=body,
        sent_at=int(item["sent_at"]),
        outgoing=sender_id == my_id,
        edited_at=int(item.get("edited_at") or 0),
        recalled=bool(item.get("recalled_at")),
        group_id=int(item.get("group") or 0),
        group_name=item.get("group_name"),
        mentions=tuple(int(user_id) for user_id in item.get("mentions") or ()),
    )


def _changed(body: dict[str, Any]) -> Changed:
    return Changed(
        changed=bool(body["changed"]),
        seq=int(body["seq"]),
        id=int(body["id"]),
        changed_at=int(body["changed_at"]),
        unread=int(body.get("unread", 0)),
    )


def _conversation(item: dict[str, Any], my_id: int) -> Conversation:
    last = item["last"]
    group_id = int(item["group_id"])
    peer_id = int(item["peer_id"])
    sender_id = int(last["from_id"])
    # A one-to-one message goes to the peer or to this user. A group message
    # has no recipient.
    recipient_id = peer_id if sender_id == my_id else my_id
    if group_id:
        recipient_id = 0

    content_type = int(last.get("content_type", 0))
    if last.get("body_b64") is not None:
        body = base64.b64decode(last["body_b64"])
    else:
        body = str(last.get("text") or "").encode()

    message = Message(
        id=int(last["id"]),
        seq=int(last["seq"]),
        sender_id=sender_id,
        recipient_id=recipient_id,
        sender_name=last.get("from"),
        recipient_name=None,
        content_type=content_type,
        body=body,
        sent_at=int(last["sent_at"]),
        outgoing=sender_id == my_id,
        group_id=group_id,
        edited_at=int(last.get("edited_at") or 0),
        recalled=bool(last.get("recalled_at")),
    )
    return Conversation(
        peer_id=peer_id,
        group_id=group_id,
        name=str(item["name"]),
        last=message,
        unread=int(item["unread"]),
        read_id=int(item["read_id"]),
        peer_read_id=int(item["peer_read_id"]),
        truncated=bool(last.get("truncated")),
    )
