"""Exceptions the SDK raises, under the tree of :mod:`switchboard.errors`.

::

    SwitchboardError
    ├── RequestError                 (switchboard.errors; carries the wire code)
    │   ├── SendRejected             the server rejected one Send for good
    │   ├── ChangeRejected           the server rejected a read, recall, edit
    │   │                            or delete
    │   └── SessionEnded             the server ended the session; no reconnect
    ├── ConnectionClosedError        (switchboard.errors)
    │   ├── ConnectionClosed
    │   │   └── ClientClosed         Client.close() was called
    │   └── ConnectionBroken
    ├── ApiError                     the HTTP API answered with an error
    │   ├── InvalidCredentials       wrong name or password
    │   ├── Unauthorized             missing, invalid, expired or revoked token
    │   ├── NameTaken                the account name exists
    │   ├── UserNotFound             no user with that name
    │   ├── GroupNotFound            no group with that id
    │   ├── Forbidden                not a member, or the role is too low
    │   └── InvalidRequest           the server rejected the request's input
    ├── ServerUnreachable            no answer from the server (HTTP or gateway)
    ├── NotLoggedIn                  the client state holds no token
    └── NotConnected                 a socket operation before connect()
"""

from __future__ import annotations

from switchboard.errors import (
    ConnectionClosed,
    ErrorCode,
    RequestError,
    SwitchboardError,
)

__all__ = [
    "ApiError",
    "ChangeRejected",
    "ClientClosed",
    "Forbidden",
    "GroupNotFound",
    "InvalidCredentials",
    "InvalidRequest",
    "NameTaken",
    "NotConnected",
    "NotLoggedIn",
    "SendRejected",
    "ServerUnreachable",
    "SessionEnded",
    "Unauthorized",
    "UserNotFound",
    "api_error",
]

SESSION_ENDING_CODES = frozenset(
    {
        ErrorCode.UNAUTHORIZED,
        ErrorCode.TOKEN_REVOKED,
        ErrorCode.SESSION_REPLACED,
        ErrorCode.UNSUPPORTED_VERSION,
    }
)
"""Fatal error codes after which reconnecting cannot succeed."""

SEND_REJECTING_CODES = frozenset(
    {ErrorCode.UNKNOWN_RECIPIENT, ErrorCode.INVALID_MESSAGE}
)
"""Error codes that fail one Send for good; resending it cannot succeed."""


class SendRejected(RequestError):
    """A message was rejected for good (unknown recipient, invalid body).

    ``local`` is true when the SDK rejected it without sending it, because
    it breaks a limit the server reported; ``client_id`` is 0 then.
    """

    def __init__(
        self, code: ErrorCode, reason: str, client_id: int, *, local: bool = False
    ) -> None:
        super().__init__(code, reason)
        self.client_id = client_id
        self.local = local


class ChangeRejected(RequestError):
    """The server rejected a read, recall, edit or delete.

    ``code`` gives the reason: MESSAGE_NOT_FOUND, NOT_SENDER, WINDOW_PASSED,
    MESSAGE_RECALLED, INVALID_MESSAGE (an edit's body), INVALID_ARGUMENT,
    UNKNOWN_RECIPIENT, GROUP_NOT_FOUND or NOT_A_MEMBER.
    """


class SessionEnded(RequestError):
    """The server closed the connection for a reason reconnecting cannot fix.

    ``code`` is UNAUTHORIZED or TOKEN_REVOKED (log in again), SESSION_REPLACED
    (another connection of this device, or a newer device of the same
    platform class beyond the server's limit, took over) or
    UNSUPPORTED_VERSION.
    """


class ClientClosed(ConnectionClosed):
    """The operation was abandoned because :meth:`Client.close` was called."""


class ApiError(SwitchboardError):
    """An error response of the HTTP API: status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message


class InvalidCredentials(ApiError):
    """Login failed: no such user, or the password does not match."""


class Unauthorized(ApiError):
    """The request's token is missing, invalid, expired or revoked."""


class NameTaken(ApiError):
    """An account with the requested name exists."""


class UserNotFound(ApiError):
    """No user has the requested name."""


class GroupNotFound(ApiError):
    """No group has the requested id."""


class Forbidden(ApiError):
    """The caller is not a member of the group, or its role does not allow
    the change."""


class InvalidRequest(ApiError):
    """The server rejected the request's input (name, password, limits)."""


class ServerUnreachable(SwitchboardError):
    """The server could not be reached: connection refused, timed out or reset."""


class NotLoggedIn(SwitchboardError):
    """The operation needs a token, and the client state has none."""


class NotConnected(SwitchboardError):
    """A socket operation was called before :meth:`Client.connect`."""


_API_ERROR_CLASSES: dict[str, type[ApiError]] = {
    "invalid_credentials": InvalidCredentials,
    "unauthorized": Unauthorized,
    "token_revoked": Unauthorized,
    "name_taken": NameTaken,
    "user_not_found": UserNotFound,
    "group_not_found": GroupNotFound,
    "not_a_member": Forbidden,
    "forbidden": Forbidden,
    "invalid_request": InvalidRequest,
    "invalid_argument": InvalidRequest,
}


def api_error(status: int, code: str, message: str) -> ApiError:
    """Build the ApiError subclass that matches ``code``, or ``status`` for others."""
    cls = _API_ERROR_CLASSES.get(code)
    if cls is None and status == 401:
        cls = Unauthorized
    elif cls is None and status == 403:
        cls = Forbidden
    elif cls is None and status in (400, 422):
        cls = InvalidRequest
    return (cls or ApiError)(status, code, message)
