"""The Switchboard asyncio SDK.

:class:`Client` logs in over the HTTP API, keeps one socket connection to a
gateway (TCP or WebSocket) open across network failures, and resends each
message with the same client id until the server acknowledges it (the server
stores each client id once). It hands out each inbox message once, in
sequence order, with the changes to messages (recalls, edits, deletions) and
conversations (reads, read receipts) as events, and keeps the conversation
list with exact unread counts.
"""

from switchboard.client.client import DEFAULT_BASE_URL, PLATFORMS, Client, ClientOptions
from switchboard.client.errors import (
    ApiError,
    ChangeRejected,
    ClientClosed,
    InvalidCredentials,
    InvalidRequest,
    NameTaken,
    NotConnected,
    NotLoggedIn,
    SendRejected,
    ServerUnreachable,
    SessionEnded,
    Unauthorized,
    UserNotFound,
)
from switchboard.client.heartbeat import HeartbeatPolicy
from switchboard.client.media import DownloadCorrupted
from switchboard.client.models import (
    MEDIA,
    TEXT,
    Changed,
    Conversation,
    ConversationPage,
    ConversationRead,
    Event,
    Gateway,
    HistoryPage,
    InboxItem,
    Login,
    Media,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadCount,
    ReadReceipt,
    Sent,
    User,
)
from switchboard.client.state import (
    ClientState,
    FileStateStore,
    MemoryStateStore,
    StateStore,
)
from switchboard.client.transport import Transport, TransportFactory

__all__ = [
    "DEFAULT_BASE_URL",
    "MEDIA",
    "PLATFORMS",
    "TEXT",
    "ApiError",
    "ChangeRejected",
    "Changed",
    "Client",
    "ClientClosed",
    "ClientOptions",
    "ClientState",
    "Conversation",
    "ConversationPage",
    "ConversationRead",
    "DownloadCorrupted",
    "Event",
    "FileStateStore",
    "Gateway",
    "HeartbeatPolicy",
    "HistoryPage",
    "InboxItem",
    "InvalidCredentials",
    "InvalidRequest",
    "Login",
    "Media",
    "MemoryStateStore",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageRecalled",
    "NameTaken",
    "NotConnected",
    "NotLoggedIn",
    "ReadCount",
    "ReadReceipt",
    "SendRejected",
    "Sent",
    "ServerUnreachable",
    "SessionEnded",
    "StateStore",
    "Transport",
    "TransportFactory",
    "Unauthorized",
    "User",
    "UserNotFound",
]
