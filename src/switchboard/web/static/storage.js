// The chat client's state in localStorage, per user and device: the inbox
// cursor, the highest client_id used, the messages not yet
// acknowledged, and an index of conversations with their last message.
//
// Message bodies are not stored: a reloaded page fetches the conversation it
// shows over HTTP. The cursor is saved in the same write as the index, so
// no conversation whose entries the cursor passed is missing from it.

const DEVICE_KEY = "switchboard.chat.device";
const MAX_INDEXED = 500;

/** Return this browser's device id, made on first use. */
export function deviceId(makeId) {
  let device = localStorage.getItem(DEVICE_KEY);
  if (!device) {
    device = makeId();
    localStorage.setItem(DEVICE_KEY, device);
  }
  return device;
}

export class LocalState {
  constructor(userId, device) {
    this.key = `switchboard.chat.${userId}.${device}`;
    const saved = parse(localStorage.getItem(this.key));
    this.cursor = Number(saved.cursor) || 0;
    this.lastClientId = Number(saved.lastClientId) || 0;
    /** Sends without a SendAck, oldest first: {client_id, to, group, content_type, body}. */
    this.outbox = Array.isArray(saved.outbox) ? saved.outbox : [];
    /** Conversations by key ("u:ID" or "g:ID"): {peer, group, name, last, unread}. */
    this.conversations = saved.conversations && typeof saved.conversations === "object"
      ? saved.conversations
      : {};
    /** Per large group id: the highest timeline seq stored without gaps. */
    this.timelineCursors = saved.timelineCursors && typeof saved.timelineCursors === "object"
      ? saved.timelineCursors
      : {};
  }

  save() {
    this.trimIndex();
    const value = JSON.stringify({
      cursor: this.cursor,
      lastClientId: this.lastClientId,
      outbox: this.outbox,
      conversations: this.conversations,
      timelineCursors: this.timelineCursors,
    });
    try {
      localStorage.setItem(this.key, value);
    } catch (error) {
      // NOTE: a full localStorage leaves the previous save in place. The
      // cursor then lags, so the next connect syncs some entries again, and
      // the client ignores those by seq.
      console.warn("switchboard: could not save the chat state:", error);
    }
  }

  // Keep the most recent conversations only, so the saved state stays small.
  trimIndex() {
    const keys = Object.keys(this.conversations);
    if (keys.length <= MAX_INDEXED) return;
    keys.sort((a, b) => lastTime(this.conversations[b]) - lastTime(this.conversations[a]));
    for (const key of keys.slice(MAX_INDEXED)) delete this.conversations[key];
  }
}

function lastTime(conversation) {
  return conversation.last ? conversation.last.sent_at : 0;
}

function parse(text) {
  if (!text) return {};
  try {
    return JSON.parse(text) || {};
  } catch {
    return {};
  }
}
