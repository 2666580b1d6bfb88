// Generated from proto/switchboard.proto and switchboard.protocol.frames by
// `python -m switchboard.web.codegen`. Do not edit: change the sources and
// regenerate. tests/web/test_codegen.py fails while this file is out of date.

export const PACKAGE = "switchboard.v1";

/** Enums: each value's name to its number. */
export const ENUMS = Object.freeze({
  "Platform": Object.freeze({
    PLATFORM_UNSPECIFIED: 0,
    PLATFORM_ANDROID: 1,
    PLATFORM_IOS: 2,
    PLATFORM_WEB: 3,
    PLATFORM_DESKTOP: 4,
    PLATFORM_CLI: 5,
  }),
  "MessageState": Object.freeze({
    MESSAGE_STATE_NORMAL: 0,
    MESSAGE_STATE_RECALLED: 1,
    MESSAGE_STATE_DELETED: 2,
  }),
  "ChangeKind": Object.freeze({
    CHANGE_NONE: 0,
    CHANGE_READ: 1,
    CHANGE_RECALL: 2,
    CHANGE_EDIT: 3,
    CHANGE_DELETE: 4,
  }),
});

/**
 * Messages: each field is [number, name, type, kind, repeated], where
 * kind is "scalar", "enum" or "message", and type is the scalar type or
 * the full name of the enum or message. Fields are in number order.
 */
export const MESSAGES = Object.freeze({
  "Connect": [
    [1, "version", "uint32", "scalar", false],
    [2, "token", "string", "scalar", false],
    [3, "device", "string", "scalar", false],
    [4, "platform", "Platform", "enum", false],
    [5, "last_seq", "uint64", "scalar", false],
    [6, "heartbeat", "uint32", "scalar", false],
    [7, "sync_limit", "uint32", "scalar", false],
    [10, "conversations", "uint32", "scalar", false],
  ],
  "Connected": [
    [1, "user_id", "uint64", "scalar", false],
    [2, "heartbeat", "uint32", "scalar", false],
    [3, "max_heartbeat", "uint32", "scalar", false],
    [4, "head_seq", "uint64", "scalar", false],
    [5, "sync", "SyncResponse", "message", false],
    [6, "last_client_id", "uint64", "scalar", false],
    [7, "server_time", "uint64", "scalar", false],
    [8, "timelines", "TimelineHead", "message", true],
  ],
  "TimelineHead": [
    [1, "group", "uint64", "scalar", false],
    [2, "head_seq", "uint64", "scalar", false],
    [3, "start_seq", "uint64", "scalar", false],
    [4, "left", "bool", "scalar", false],
  ],
  "Send": [
    [1, "to", "uint64", "scalar", false],
    [2, "client_id", "uint64", "scalar", false],
    [3, "body", "bytes", "scalar", false],
    [4, "content_type", "uint32", "scalar", false],
    [5, "group", "uint64", "scalar", false],
    [6, "mentions", "uint64", "scalar", true],
  ],
  "SendAck": [
    [1, "client_id", "uint64", "scalar", false],
    [2, "seq", "uint64", "scalar", false],
    [3, "id", "uint64", "scalar", false],
    [4, "sent_at", "uint64", "scalar", false],
    [5, "group_seq", "uint64", "scalar", false],
  ],
  "Message": [
    [1, "seq", "uint64", "scalar", false],
    [2, "id", "uint64", "scalar", false],
    [3, "sender", "uint64", "scalar", false],
    [4, "recipient", "uint64", "scalar", false],
    [5, "body", "bytes", "scalar", false],
    [6, "content_type", "uint32", "scalar", false],
    [7, "sent_at", "uint64", "scalar", false],
    [8, "group", "uint64", "scalar", false],
    [9, "mentions", "uint64", "scalar", true],
    [10, "unread", "uint32", "scalar", false],
    [11, "change", "ChangeKind", "enum", false],
    [12, "target", "uint64", "scalar", false],
    [13, "edited_at", "uint64", "scalar", false],
    [14, "state", "MessageState", "enum", false],
    [15, "group_seq", "uint64", "scalar", false],
  ],
  "SyncRequest": [
    [1, "after_seq", "uint64", "scalar", false],
    [2, "limit", "uint32", "scalar", false],
  ],
  "SyncResponse": [
    [1, "after_seq", "uint64", "scalar", false],
    [2, "messages", "Message", "message", true],
    [3, "has_more", "bool", "scalar", false],
    [4, "head_seq", "uint64", "scalar", false],
  ],
  "Cursor": [
    [1, "seq", "uint64", "scalar", false],
  ],
  "Error": [
    [1, "code", "uint32", "scalar", false],
    [2, "reason", "string", "scalar", false],
    [3, "client_id", "uint64", "scalar", false],
    [4, "fatal", "bool", "scalar", false],
    [5, "retry_after", "uint32", "scalar", false],
    [10, "request_id", "uint64", "scalar", false],
  ],
  "Reconnect": [
    [1, "delay", "uint32", "scalar", false],
    [2, "reason", "string", "scalar", false],
    [3, "addresses", "string", "scalar", true],
  ],
  "Heartbeat": [
    [1, "interval", "uint32", "scalar", false],
  ],
  "ConversationsRequest": [
    [1, "limit", "uint32", "scalar", false],
    [2, "before", "uint64", "scalar", false],
  ],
  "ConversationList": [
    [1, "conversations", "Conversation", "message", true],
    [2, "has_more", "bool", "scalar", false],
    [3, "head_seq", "uint64", "scalar", false],
    [4, "total_unread", "uint32", "scalar", false],
    [5, "before", "uint64", "scalar", false],
  ],
  "Conversation": [
    [1, "peer", "uint64", "scalar", false],
    [2, "group", "uint64", "scalar", false],
    [3, "name", "string", "scalar", false],
    [4, "last", "Message", "message", false],
    [5, "unread", "uint32", "scalar", false],
    [6, "read_id", "uint64", "scalar", false],
    [7, "peer_read_id", "uint64", "scalar", false],
    [8, "truncated", "bool", "scalar", false],
  ],
  "ChangeRequest": [
    [1, "request_id", "uint64", "scalar", false],
    [2, "kind", "ChangeKind", "enum", false],
    [3, "message_id", "uint64", "scalar", false],
    [4, "body", "bytes", "scalar", false],
    [5, "peer", "uint64", "scalar", false],
    [6, "group", "uint64", "scalar", false],
  ],
  "ChangeAck": [
    [1, "request_id", "uint64", "scalar", false],
    [2, "seq", "uint64", "scalar", false],
    [3, "id", "uint64", "scalar", false],
    [4, "changed_at", "uint64", "scalar", false],
    [5, "unread", "uint32", "scalar", false],
    [6, "read_id", "uint64", "scalar", false],
  ],
  "ReadReceipt": [
    [1, "reader", "uint64", "scalar", false],
    [2, "group", "uint64", "scalar", false],
    [3, "message_id", "uint64", "scalar", false],
    [4, "read_at", "uint64", "scalar", false],
  ],
  "TimelineSync": [
    [1, "group", "uint64", "scalar", false],
    [2, "after_seq", "uint64", "scalar", false],
    [3, "limit", "uint32", "scalar", false],
  ],
  "TimelinePage": [
    [1, "group", "uint64", "scalar", false],
    [2, "after_seq", "uint64", "scalar", false],
    [3, "messages", "Message", "message", true],
    [4, "has_more", "bool", "scalar", false],
    [5, "head_seq", "uint64", "scalar", false],
    [6, "start_seq", "uint64", "scalar", false],
  ],
  "Typing": [
    [1, "to", "uint64", "scalar", false],
    [2, "group", "uint64", "scalar", false],
    [3, "active", "bool", "scalar", false],
    [4, "sender", "uint64", "scalar", false],
    [5, "ttl", "uint32", "scalar", false],
  ],
  "PresenceSubscribe": [
    [1, "users", "uint64", "scalar", true],
  ],
  "PresenceUpdate": [
    [1, "users", "UserPresence", "message", true],
  ],
  "UserPresence": [
    [1, "user", "uint64", "scalar", false],
    [2, "online", "bool", "scalar", false],
    [3, "last_seen", "uint64", "scalar", false],
  ],
});

/** Frame type bytes (docs/protocol.md, "Frame types"). */
export const FrameType = Object.freeze({
  HEARTBEAT: 0,
  CONNECT: 1,
  CONNECTED: 2,
  SEND: 3,
  SEND_ACK: 4,
  MESSAGE: 5,
  SYNC: 6,
  SYNC_RESPONSE: 7,
  CURSOR: 8,
  ERROR: 9,
  RECONNECT: 10,
  HEARTBEAT_INTERVAL: 11,
  CONVERSATIONS: 12,
  CONVERSATION_LIST: 13,
  CHANGE: 14,
  CHANGE_ACK: 15,
  READ_RECEIPT: 16,
  TIMELINE_SYNC: 17,
  TIMELINE_PAGE: 18,
  TYPING: 20,
  PRESENCE_SUBSCRIBE: 21,
  PRESENCE: 22,
});

/** The payload message of each frame type but the heartbeat. */
export const PAYLOAD_TYPES = Object.freeze({
  1: "Connect",
  2: "Connected",
  3: "Send",
  4: "SendAck",
  5: "Message",
  6: "SyncRequest",
  7: "SyncResponse",
  8: "Cursor",
  9: "Error",
  10: "Reconnect",
  11: "Heartbeat",
  12: "ConversationsRequest",
  13: "ConversationList",
  14: "ChangeRequest",
  15: "ChangeAck",
  16: "ReadReceipt",
  17: "TimelineSync",
  18: "TimelinePage",
  20: "Typing",
  21: "PresenceSubscribe",
  22: "PresenceUpdate",
});
