from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_ANDROID: _ClassVar[Platform]
    PLATFORM_IOS: _ClassVar[Platform]
    PLATFORM_WEB: _ClassVar[Platform]
    PLATFORM_DESKTOP: _ClassVar[Platform]
    PLATFORM_CLI: _ClassVar[Platform]

class MessageState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATE_NORMAL: _ClassVar[MessageState]
    MESSAGE_STATE_RECALLED: _ClassVar[MessageState]
    MESSAGE_STATE_DELETED: _ClassVar[MessageState]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_NONE: _ClassVar[ChangeKind]
    CHANGE_READ: _ClassVar[ChangeKind]
    CHANGE_RECALL: _ClassVar[ChangeKind]
    CHANGE_EDIT: _ClassVar[ChangeKind]
    CHANGE_DELETE: _ClassVar[ChangeKind]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_ANDROID: Platform
PLATFORM_IOS: Platform
PLATFORM_WEB: Platform
PLATFORM_DESKTOP: Platform
PLATFORM_CLI: Platform
MESSAGE_STATE_NORMAL: MessageState
MESSAGE_STATE_RECALLED: MessageState
MESSAGE_STATE_DELETED: MessageState
CHANGE_NONE: ChangeKind
CHANGE_READ: ChangeKind
CHANGE_RECALL: ChangeKind
CHANGE_EDIT: ChangeKind
CHANGE_DELETE: ChangeKind

class Connect(_message.Message):
    __slots__ = ("version", "token", "device", "platform", "last_seq", "heartbeat", "sync_limit", "conversations")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SYNC_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    version: int
    token: str
    device: str
    platform: Platform
    last_seq: int
    heartbeat: int
    sync_limit: int
    conversations: int
    def __init__(self, version: _Optional[int] = ..., token: _Optional[str] = ..., device: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ..., last_seq: _Optional[int] = ..., heartbeat: _Optional[int] = ..., sync_limit: _Optional[int] = ..., conversations: _Optional[int] = ...) -> None: ...

class Connected(_message.Message):
    __slots__ = ("user_id", "heartbeat", "max_heartbeat", "head_seq", "sync", "last_client_id", "server_time", "timelines")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    MAX_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    LAST_CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    TIMELINES_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    heartbeat: int
    max_heartbeat: int
    head_seq: int
    sync: SyncResponse
    last_client_id: int
    server_time: int
    timelines: _containers.RepeatedCompositeFieldContainer[TimelineHead]
    def __init__(self, user_id: _Optional[int] = ..., heartbeat: _Optional[int] = ..., max_heartbeat: _Optional[int] = ..., head_seq: _Optional[int] = ..., sync: _Optional[_Union[SyncResponse, _Mapping]] = ..., last_client_id: _Optional[int] = ..., server_time: _Optional[int] = ..., timelines: _Optional[_Iterable[_Union[TimelineHead, _Mapping]]] = ...) -> None: ...

class TimelineHead(_message.Message):
    __slots__ = ("group", "head_seq", "start_seq", "left")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    START_SEQ_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    group: int
    head_seq: int
    start_seq: int
    left: bool
    def __init__(self, group: _Optional[int] = ..., head_seq: _Optional[int] = ..., start_seq: _Optional[int] = ..., left: _Optional[bool] = ...) -> None: ...

class Send(_message.Message):
    __slots__ = ("to", "client_id", "body", "content_type", "group", "mentions")
    TO_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    to: int
    client_id: int
    body: bytes
    content_type: int
    group: int
    mentions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, to: _Optional[int] = ..., client_id: _Optional[int] = ..., body: _Optional[bytes] = ..., content_type: _Optional[int] = ..., group: _Optional[int] = ..., mentions: _Optional[_Iterable[int]] = ...) -> None: ...

class SendAck(_message.Message):
    __slots__ = ("client_id", "seq", "id", "sent_at", "group_seq")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    GROUP_SEQ_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    seq: int
    id: int
    sent_at: int
    group_seq: int
    def __init__(self, client_id: _Optional[int] = ..., seq: _Optional[int] = ..., id: _Optional[int] = ..., sent_at: _Optional[int] = ..., group_seq: _Optional[int] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("seq", "id", "sender", "recipient", "body", "content_type", "sent_at", "group", "mentions", "unread", "change", "target", "edited_at", "state", "group_seq")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    EDITED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GROUP_SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    id: int
    sender: int
    recipient: int
    body: bytes
    content_type: int
    sent_at: int
    group: int
    mentions: _containers.RepeatedScalarFieldContainer[int]
    unread: int
    change: ChangeKind
    target: int
    edited_at: int
    state: MessageState
    group_seq: int
    def __init__(self, seq: _Optional[int] = ..., id: _Optional[int] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., body: _Optional[bytes] = ..., content_type: _Optional[int] = ..., sent_at: _Optional[int] = ..., group: _Optional[int] = ..., mentions: _Optional[_Iterable[int]] = ..., unread: _Optional[int] = ..., change: _Optional[_Union[ChangeKind, str]] = ..., target: _Optional[int] = ..., edited_at: _Optional[int] = ..., state: _Optional[_Union[MessageState, str]] = ..., group_seq: _Optional[int] = ...) -> None: ...

class SyncRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("after_seq", "messages", "has_more", "head_seq")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    has_more: bool
    head_seq: int
    def __init__(self, after_seq: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., has_more: _Optional[bool] = ..., head_seq: _Optional[int] = ...) -> None: ...

class Cursor(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "reason", "client_id", "fatal", "retry_after", "request_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    FATAL_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    client_id: int
    fatal: bool
    retry_after: int
    request_id: int
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ..., client_id: _Optional[int] = ..., fatal: _Optional[bool] = ..., retry_after: _Optional[int] = ..., request_id: _Optional[int] = ...) -> None: ...

class Reconnect(_message.Message):
    __slots__ = ("delay", "reason", "addresses")
    DELAY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    delay: int
    reason: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, delay: _Optional[int] = ..., reason: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("interval",)
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    interval: int
    def __init__(self, interval: _Optional[int] = ...) -> None: ...

class ConversationsRequest(_message.Message):
    __slots__ = ("limit", "before")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    limit: int
    before: int
    def __init__(self, limit: _Optional[int] = ..., before: _Optional[int] = ...) -> None: ...

class ConversationList(_message.Message):
    __slots__ = ("conversations", "has_more", "head_seq", "total_unread", "before")
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNREAD_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    has_more: bool
    head_seq: int
    total_unread: int
    before: int
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ..., has_more: _Optional[bool] = ..., head_seq: _Optional[int] = ..., total_unread: _Optional[int] = ..., before: _Optional[int] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("peer", "group", "name", "last", "unread", "read_id", "peer_read_id", "truncated")
    PEER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_READ_ID_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    peer: int
    group: int
    name: str
    last: Message
    unread: int
    read_id: int
    peer_read_id: int
    truncated: bool
    def __init__(self, peer: _Optional[int] = ..., group: _Optional[int] = ..., name: _Optional[str] = ..., last: _Optional[_Union[Message, _Mapping]] = ..., unread: _Optional[int] = ..., read_id: _Optional[int] = ..., peer_read_id: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...

class ChangeRequest(_message.Message):
    __slots__ = ("request_id", "kind", "message_id", "body", "peer", "group")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    kind: ChangeKind
    message_id: int
    body: bytes
    peer: int
    group: int
    def __init__(self, request_id: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., message_id: _Optional[int] = ..., body: _Optional[bytes] = ..., peer: _Optional[int] = ..., group: _Optional[int] = ...) -> None: ...

class ChangeAck(_message.Message):
    __slots__ = ("request_id", "seq", "id", "changed_at", "unread", "read_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    UNREAD_FIELD_NUMBER: _ClassVar[int]
    READ_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    seq: int
    id: int
    changed_at: int
    unread: int
    read_id: int
    def __init__(self, request_id: _Optional[int] = ..., seq: _Optional[int] = ..., id: _Optional[int] = ..., changed_at: _Optional[int] = ..., unread: _Optional[int] = ..., read_id: _Optional[int] = ...) -> None: ...

class ReadReceipt(_message.Message):
    __slots__ = ("reader", "group", "message_id", "read_at")
    READER_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    reader: int
    group: int
    message_id: int
    read_at: int
    def __init__(self, reader: _Optional[int] = ..., group: _Optional[int] = ..., message_id: _Optional[int] = ..., read_at: _Optional[int] = ...) -> None: ...

class TimelineSync(_message.Message):
    __slots__ = ("group", "after_seq", "limit")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    group: int
    after_seq: int
    limit: int
    def __init__(self, group: _Optional[int] = ..., after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class TimelinePage(_message.Message):
    __slots__ = ("group", "after_seq", "messages", "has_more", "head_seq", "start_seq")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    START_SEQ_FIELD_NUMBER: _ClassVar[int]
    group: int
    after_seq: int
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    has_more: bool
    head_seq: int
    start_seq: int
    def __init__(self, group: _Optional[int] = ..., after_seq: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., has_more: _Optional[bool] = ..., head_seq: _Optional[int] = ..., start_seq: _Optional[int] = ...) -> None: ...

class Typing(_message.Message):
    __slots__ = ("to", "group", "active", "sender", "ttl")
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    to: int
    group: int
    active: bool
    sender: int
    ttl: int
    def __init__(self, to: _Optional[int] = ..., group: _Optional[int] = ..., active: _Optional[bool] = ..., sender: _Optional[int] = ..., ttl: _Optional[int] = ...) -> None: ...

class PresenceSubscribe(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, users: _Optional[_Iterable[int]] = ...) -> None: ...

class PresenceUpdate(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserPresence]
    def __init__(self, users: _Optional[_Iterable[_Union[UserPresence, _Mapping]]] = ...) -> None: ...

class UserPresence(_message.Message):
    __slots__ = ("user", "online", "last_seen")
    USER_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    user: int
    online: bool
    last_seen: int
    def __init__(self, user: _Optional[int] = ..., online: _Optional[bool] = ..., last_seen: _Optional[int] = ...) -> None: ...
