// Presence of the peers of one-to-one conversations (docs/protocol.md,
// "PresenceSubscribe and Presence"): online, or when last seen.

/** Maximum number of users one PresenceSubscribe may list (the server's default). */
export const MAX_WATCHED = 500;
/** Milliseconds before asking again for a user the server did not report. */
const RETRY_UNKNOWN_MS = 6000;
/** Times to ask again for one user, per page load. */
const MAX_RETRIES = 5;

/**
 * The watched users of this connection and their latest presence.
 * `send(users)` sends a PresenceSubscribe and returns whether the
 * connection was open; `changed()` is called when a presence changes.
 */
export class PresenceWatch {
  constructor(send, changed) {
    this.send = send;
    this.changed = changed;
    this.users = [];
    /** User id -> {online, lastSeen}, lastSeen in milliseconds since the epoch or 0. */
    this.states = new Map();
    this.retryTimer = null;
    this.retries = new Map();
  }

  /** Watch `users` (ids, most important first); the list replaces the previous one. */
  watch(users) {
    const list = [...new Set(users.filter(Boolean))].slice(0, MAX_WATCHED);
    // Only a change of members matters: the server keeps no order.
    const current = new Set(this.users);
    if (list.length === current.size && list.every((user) => current.has(user))) return;
    this.users = list;
    this.send(list);
  }

  /** Send the list again, because the server drops it when the connection closes. */
  connected() {
    if (this.users.length) this.send(this.users);
  }

  /** Apply a received Presence frame. */
  received(update) {
    for (const item of update.users) {
      this.states.set(Number(item.user), {
        online: Boolean(item.online),
        lastSeen: Number(item.last_seen || 0),
      });
    }
    if (update.users.length) this.changed();
  }

  /** Return the presence of `user`, or undefined when the server has not reported it. */
  state(user) {
    return this.states.get(user);
  }

  /**
   * Ask again, after a while, for a watched user whose presence is unknown.
   * The server reports conversation peers only, and caches "not a peer" for
   * a few seconds, so two users who just wrote to each other for the first
   * time learn of each other's presence on a later request.
   */
  retryUnknown(user) {
    if (this.retryTimer !== null || this.states.has(user) || !this.users.includes(user)) return;
    const retries = this.retries.get(user) || 0;
    if (retries >= MAX_RETRIES) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.states.has(user)) return;
      this.retries.set(user, retries + 1);
      this.send(this.users);
      this.retryUnknown(user);
    }, RETRY_UNKNOWN_MS);
  }

  clear() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.users = [];
    this.states.clear();
    this.retries.clear();
  }
}

/** Return "online", "last seen today at 14:03" and the like, or "" when unknown. */
export function describePresence(state, now = Date.now()) {
  if (!state) return "";
  if (state.online) return "online";
  if (!state.lastSeen) return "offline";
  const seen = new Date(state.lastSeen);
  const clock = seen.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (seen.toDateString() === new Date(now).toDateString()) return `last seen today at ${clock}`;
  return `last seen ${seen.toLocaleDateString([], { day: "numeric", month: "short" })} at ${clock}`;
}
