"""The Switchboard asyncio SDK.

:class:`Client` logs in over the HTTP API, keeps one socket connection to a
gateway (TCP or WebSocket) open across network failures, and resends each
message with the same client id until the server acknowledges it (the server
stores each client id once). It hands out each inbox message once, in
sequence order, with the changes to messages (recalls, edits, deletions) and
conversations (reads, read receipts) as events, and keeps the conversation
list with exact unread counts.
"""

from switchboard.client.client import (
    DEFAULT_BASE_URL,
    PLATFORMS,
    Client,
    ClientOptions,
    check_base_url,
)
from switchboard.client.errors import (
    ApiError,
    ChangeRejected,
    ClientClosed,
    Forbidden,
    GroupNotFound,
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
from switchboard.client.events import PresenceChanged, Signal, TypingChanged
from switchboard.client.groups import ROLES
from switchboard.client.heartbeat import HeartbeatPolicy
from switchboard.client.media import DownloadCorrupted
from switchboard.client.models import (
    MEDIA,
    NOTICE,
    TEXT,
    Changed,
    Conversation,
    ConversationPage,
    ConversationRead,
    Event,
    Gateway,
    Group,
    GroupMember,
    GroupNotice,
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
    SearchPage,
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
    "NOTICE",
    "PLATFORMS",
    "ROLES",
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
    "Forbidden",
    "Gateway",
    "Group",
    "GroupMember",
    "GroupNotFound",
    "GroupNotice",
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
    "PresenceChanged",
    "ReadCount",
    "ReadReceipt",
    "SearchPage",
    "SendRejected",
    "Sent",
    "ServerUnreachable",
    "SessionEnded",
    "Signal",
    "StateStore",
    "Transport",
    "TransportFactory",
    "TypingChanged",
    "Unauthorized",
    "User",
    "UserNotFound",
    "check_base_url",
]
