"""HTTP API: accounts, logins, history, gateway discovery and media.

WebSocket clients at /v1/ws never reach this application: the HTTP listener
hands their upgrade requests to the gateway (switchboard.api.upgrade). The
OpenAPI document is served at /openapi.json. Every error response has the
body ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard.api.adminkey import check_admin_key
from switchboard.api.bodylimit import BodyLimit
from switchboard.api.directory import GatewayDirectory
from switchboard.api.errors import ERROR_RESPONSES
from switchboard.api.validation import describe_problems
from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.gateway.gateway import Gateway
from switchboard.ids import MessageId, UserId
from switchboard.logic.auth import AuthService
from switchboard.logic.chat import ChatService
from switchboard.logic.stats import SharedCounters
from switchboard.protocol import pb
from switchboard.store.base import Session, Store, StoredMessage, User

__all__ = ["ApiError", "CurrentSession", "Services", "create_app", "encode_text"]

STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.NAME_TAKEN: 409,
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.UNKNOWN_RECIPIENT: 404,
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.GROUP_NOT_FOUND: 404,
    ErrorCode.GROUP_FULL: 409,
    ErrorCode.RATE_LIMITED: 429,
}


@dataclass(slots=True)
class Services:
    """What the HTTP handlers need, built by server.py."""

    settings: Settings
    store: Store
    auth: AuthService
    chat: ChatService
    gateway: Gateway | None
    """The gateway of this process; None in a cluster's dispatcher, which
    serves no WebSocket clients."""
    tcp_port: int
    directory: GatewayDirectory | None = None
    """A cluster's gateways; None: list this process's own listeners."""
    admin_key: bytes | None = None
    """Key that POST /v1/accounts requires, in the X-Admin-Key header as hex,
    for a name listed in the ``admins`` setting; None: such names cannot be
    registered over HTTP."""
    counters: SharedCounters | None = None
    """A cluster's summed statistics counters; None: report this process's."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error_response(
    request: Request, status: int, code: str, message: str
) -> JSONResponse:
    """Return the error body, counted in the statistics by ``code``."""
    request.app.state.services.chat.stats.count_error(code)
    return JSONResponse({"error": {"code": code, "message": message}}, status)


class AccountRequest(BaseModel):
    name: str = Field(description="1 to 32 of a-z, 0-9, '_', '.', '-'")
    password: str = Field(description="8 to 1024 characters")


class AccountResponse(BaseModel):
    id: int
    name: str


class PasswordChangeRequest(BaseModel):
    current_password: str
    new_password: str = Field(description="8 to 1024 characters")


class LoginRequest(BaseModel):
    name: str
    password: str
    device: str = Field(description="Device id the token is bound to, 1 to 64 chars")
    platform: str = Field(
        default="unspecified",
        description="android, ios, web, desktop, cli or unspecified",
    )


class LoginResponse(BaseModel):
    token: str
    user_id: int
    device: str
    expires_at: int = Field(description="Milliseconds since the Unix epoch")


class SendRequest(BaseModel):
    to: str | None = Field(
        default=None, description="Recipient's user name; or give group"
    )
    group: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Id of the group to send to; or give to",
    )
    text: str = Field(description="UTF-8 text of the message")
    client_id: int = Field(
        ge=1,
        le=2**63 - 1,
        description="Sender-chosen id, unique per device; a retry reuses it",
    )
    mentions: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="User names mentioned in a group message; each a member",
    )


class SendResponse(BaseModel):
    id: int
    seq: int = Field(
        description="The message's sequence in the sender's inbox; 0 for a large group"
    )
    client_id: int
    sent_at: int = Field(description="Milliseconds since the Unix epoch")
    duplicate: bool = Field(description="True when this client_id was sent before")
    group_seq: int = Field(
        default=0,
        description="A large group's message: its sequence in the group's timeline",
    )


class UsersResponse(BaseModel):
    users: list[AccountResponse]


class HistoryMessage(BaseModel):
    id: int
    seq: int | None = Field(
        default=None, description="The message's sequence in the caller's inbox"
    )
    sender: str = Field(serialization_alias="from")
    recipient: str = Field(serialization_alias="to")
    from_id: int
    to_id: int
    content_type: int
    text: str | None = None
    body_b64: str | None = None
    sent_at: int
    edited_at: int | None = Field(default=None, description="When it was last edited")
    recalled_at: int | None = Field(
        default=None, description="When its sender recalled it; the body is empty"
    )


class HistoryResponse(BaseModel):
    messages: list[HistoryMessage]
    has_more: bool


_bearer = HTTPBearer(auto_error=False, description="Token from POST /v1/sessions")


async def current_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Session:
    """Return the session of the request's bearer token, or raise 401."""
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401, "unauthorized", "missing 'Authorization: Bearer TOKEN' header"
        )
    token = credentials.credentials
    request.state.token = token
    services: Services = request.app.state.services
    return await services.auth.authenticate(token)


CurrentSession = Annotated[Session, Depends(current_session)]


def create_app(services: Services) -> FastAPI:
    """Build the ASGI application around ``services``."""
    app = FastAPI(
        title="Switchboard",
        version="1",
        description="Accounts, logins and history for the Switchboard chat server.",
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    app.add_middleware(BodyLimit, limit=services.settings.max_request_size)
    _install_error_handlers(app)
    auth = services.auth

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/accounts", status_code=201, response_model=AccountResponse)
    async def create_account(
        body: AccountRequest,
        x_admin_key: Annotated[str | None, Header()] = None,
    ) -> AccountResponse:
        """Create an account. A name listed in the ``admins`` setting needs the
        admin key in ``X-Admin-Key``, so only the operator can create it."""
        if body.name in services.settings.admin_names:
            check_admin_key(services.admin_key, body.name, x_admin_key)
        user = await auth.create_account(body.name, body.password)
        return AccountResponse(id=user.id, name=user.name)

    @app.post("/v1/sessions", response_model=LoginResponse)
    async def login(request: Request, body: LoginRequest) -> LoginResponse:
        try:
            peer = request.client.host if request.client else ""
            result = await auth.login(
                body.name, body.password, body.device, body.platform, peer
            )
        except RequestError as exc:
            if exc.code is ErrorCode.UNAUTHORIZED:
                raise ApiError(401, "invalid_credentials", exc.reason) from exc
            raise
        return LoginResponse(
            token=result.token,
            user_id=result.session.user_id,
            device=result.session.device,
            expires_at=result.session.expires_at,
        )

    @app.delete("/v1/sessions/current", status_code=204)
    async def logout(request: Request, session: CurrentSession) -> Response:
        await auth.logout(request.state.token)
        await services.chat.kick(
            session.user_id, session.device, ErrorCode.TOKEN_REVOKED, "logged out"
        )
        return Response(status_code=204)

    @app.put("/v1/accounts/current/password", status_code=204)
    async def change_password(
        request: Request, body: PasswordChangeRequest, session: CurrentSession
    ) -> Response:
        """Change the caller's password and revoke every other token of the
        account; the token of this request stays valid."""
        peer = request.client.host if request.client else ""
        try:
            revoked = await auth.change_password(
                session, body.current_password, body.new_password, peer
            )
        except RequestError as exc:
            if exc.code is ErrorCode.UNAUTHORIZED:
                raise ApiError(401, "invalid_credentials", exc.reason) from exc
            raise
        for device in {other.device for other in revoked} - {session.device}:
            await services.chat.kick(
                session.user_id, device, ErrorCode.TOKEN_REVOKED, "password changed"
            )
        return Response(status_code=204)

    @app.post("/v1/messages", status_code=201, response_model=SendResponse)
    async def send_message(body: SendRequest, session: CurrentSession) -> SendResponse:
        """Send a text message to a user or a group as the token's user and
        device.

        The same per-user rate limit and deduplication apply as on sockets.
        """
        send = await _send_frame(services.store, body)
        result = await services.chat.send_from_api(
            session.user_id, session.device, send
        )
        return SendResponse(
            id=result.message.id,
            seq=result.sender_seq,
            client_id=body.client_id,
            sent_at=result.message.sent_at,
            duplicate=result.duplicate,
            group_seq=result.group_seq,
        )

    @app.get("/v1/users/{name}", response_model=AccountResponse)
    async def get_user(name: str, session: CurrentSession) -> AccountResponse:
        user = await services.store.get_user_by_name(name)
        if user is None:
            raise ApiError(404, "user_not_found", f"no user named {name[:40]!r}")
        return AccountResponse(id=user.id, name=user.name)

    @app.get("/v1/users", response_model=UsersResponse)
    async def get_users(
        session: CurrentSession, id: Annotated[list[int], Query()]
    ) -> UsersResponse:
        if len(id) > 100:
            raise ApiError(400, "invalid_argument", "ask for at most 100 ids at once")
        users = []
        for user_id in dict.fromkeys(id):
            user = await services.store.get_user(UserId(user_id))
            if user is not None:
                users.append(AccountResponse(id=user.id, name=user.name))
        return UsersResponse(users=users)

    @app.get(
        "/v1/conversations/{peer}/messages",
        response_model=HistoryResponse,
        response_model_by_alias=True,
        response_model_exclude_none=True,
    )
    async def history(
        peer: str,
        session: CurrentSession,
        before: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> HistoryResponse:
        peer_user = await services.store.get_user_by_name(peer)
        if peer_user is None:
            raise ApiError(404, "user_not_found", f"no user named {peer[:40]!r}")
        me = await services.store.get_user(session.user_id)
        assert me is not None
        before_id = None if before is None else MessageId(before)
        messages, has_more = await services.store.read_conversation(
            session.user_id, peer_user.id, before_id, limit
        )
        names = {me.id: me.name, peer_user.id: peer_user.name}
        seqs = await services.store.inbox_seqs(
            session.user_id, [message.id for message in messages]
        )
        return HistoryResponse(
            messages=[_history_message(m, names, seqs.get(m.id)) for m in messages],
            has_more=has_more,
        )

    @app.get("/v1/gateways")
    async def gateways(request: Request) -> dict[str, Any]:
        settings = services.settings
        host = settings.advertise_host or request.url.hostname or settings.tcp_host
        http_port = request.url.port or settings.http_port
        tcp: dict[str, Any] = {
            "transport": "tcp",
            "address": f"{host}:{services.tcp_port}",
        }
        if settings.tls:
            tcp["tls"] = True
        ws_scheme = "wss" if settings.tls else "ws"
        listing: list[dict[str, Any]] = [
            tcp,
            {"transport": "ws", "url": f"{ws_scheme}://{host}:{http_port}/v1/ws"},
        ]
        if services.directory is not None:
            listing = await services.directory.listing()
        return {
            "gateways": listing,
            "heartbeat": settings.heartbeat,
            "max_heartbeat": settings.max_heartbeat,
            "max_frame_size": settings.max_frame_size,
            "max_body_size": settings.max_body_size,
        }

    # These modules import this one, so they are imported here, not at the top.
    from switchboard.api import admin, changes, conversations, groups, receipts, search
    from switchboard.api.media import install_media
    from switchboard.api.web import install_web

    app.include_router(admin.router)
    app.include_router(changes.router)
    app.include_router(conversations.router)
    app.include_router(groups.router)
    app.include_router(receipts.router)
    app.include_router(search.router)
    install_media(app, services)
    install_web(app)

    return app


async def _send_frame(store: Store, body: SendRequest) -> pb.Send:
    """Build the Send of a POST /v1/messages; raise ApiError for bad names."""
    if (body.to is None) == (body.group is None):
        raise ApiError(
            400, "invalid_argument", "give either 'to' (a user name) or 'group'"
        )
    if body.mentions and body.group is None:
        raise ApiError(
            400, "invalid_argument", "'mentions' are only for group messages"
        )
    send = pb.Send(client_id=body.client_id, body=encode_text(body.text))
    if body.group is not None:
        send.group = body.group
        for name in dict.fromkeys(body.mentions):
            send.mentions.append((await _user_named(store, name)).id)
    else:
        assert body.to is not None
        send.to = (await _user_named(store, body.to)).id
    return send


async def _user_named(store: Store, name: str) -> User:
    user = await store.get_user_by_name(name)
    if user is None:
        raise ApiError(404, "user_not_found", f"no user named {name[:40]!r}")
    return user


def encode_text(text: str) -> bytes:
    """Return ``text`` as UTF-8; raise ApiError 400 for a lone surrogate.

    JSON allows an escaped lone surrogate such as ``"\\ud800"``, which UTF-8
    cannot encode.
    """
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise ApiError(
            400,
            "invalid_message",
            f"the text contains a character that is not valid Unicode at"
            f" position {exc.start}; send UTF-8 text",
        ) from exc


def _history_message(
    message: StoredMessage, names: dict[UserId, str], seq: int | None
) -> HistoryMessage:
    item = HistoryMessage(
        id=message.id,
        seq=seq,
        sender=names[message.sender],
        recipient=names[message.recipient],
        from_id=message.sender,
        to_id=message.recipient,
        content_type=message.content_type,
        sent_at=message.sent_at,
        edited_at=message.edited_at or None,
        recalled_at=message.recalled_at or None,
    )
    if message.content_type == 0:
        item.text = message.body.decode(errors="replace")
    else:
        item.body_b64 = base64.b64encode(message.body).decode()
    return item


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request, exc.status, exc.code, exc.message)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        status = STATUS_OF.get(exc.code, 400)
        response = _error_response(request, status, exc.code.name.lower(), exc.reason)
        if exc.retry_after_ms:
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after_ms / 1000))
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (unknown path, wrong method) in the same shape as ours.
        code = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        response = _error_response(request, exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        return _error_response(
            request, 422, "invalid_request", describe_problems(exc.errors())
        )
