// Typing indicators (docs/protocol.md, "Typing"): the notices this user
// sends while composing, and the indicators of other users typing.

/** Milliseconds between two active Typing frames while the user keeps typing. */
export const TYPING_REFRESH_MS = 3000;
/** Milliseconds without a keystroke after which the user counts as stopped. */
export const TYPING_IDLE_MS = 5000;
/** Seconds an indicator stays on when the server sets no `ttl`. */
const DEFAULT_TTL_S = 6;
/**
 * Milliseconds typing to a user stays off after the server rejected it with
 * FORBIDDEN, unless a message from that user arrives first. The server
 * caches "not a peer" for 5 seconds.
 */
const FORBIDDEN_PAUSE_MS = 5000;

/**
 * The Typing frames of this user: one with `active` true when typing starts
 * in a conversation, again every TYPING_REFRESH_MS while it goes on, and one
 * with `active` false on stop(). Steady typing thus sends one frame every 3
 * seconds, well within the server's limit of 2 a second with bursts of 5,
 * above which it drops frames without an error frame. `send(message)` sends a
 * Typing frame and returns whether the connection was open.
 */
export class TypingSender {
  constructor(send) {
    this.send = send;
    this.current = null;
    this.idleTimer = null;
    this.lastTarget = null;
    this.pausedUntil = new Map();
  }

  /** Note a keystroke in the composer of `target` ({key, to, group}); `empty`: the composer is now empty. */
  composing(target, empty) {
    if (this.current && this.current.key !== target.key) this.stop();
    if (empty) {
      this.stop();
      return;
    }
    if ((this.pausedUntil.get(target.key) || 0) > Date.now()) return;
    const now = Date.now();
    if (!this.current || now - this.current.sentAt >= TYPING_REFRESH_MS) {
      if (!this.send({ to: target.to, group: target.group, active: true })) return;
      this.current = { ...target, sentAt: now };
      this.lastTarget = target;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), TYPING_IDLE_MS);
  }

  /** Tell the peers that the user stopped typing, if a notice of typing went out. */
  stop() {
    clearTimeout(this.idleTimer);
    const current = this.current;
    this.current = null;
    if (current) this.send({ to: current.to, group: current.group, active: false });
  }

  /**
   * Forget the typing state without a frame: the user sent a message, and a
   * message from a user ends that user's indicator at the receivers.
   */
  sent() {
    clearTimeout(this.idleTimer);
    this.current = null;
  }

  /**
   * Pause typing notices to the last one-to-one target, which the server
   * rejected with FORBIDDEN: that user is not a conversation peer (yet).
   */
  forbidden() {
    // NOTE: the Error frame names no conversation, so it is taken to refer
    // to the last Typing frame sent. That is right while the user types in
    // one conversation at a time.
    const target = this.lastTarget;
    if (!target || target.group) return;
    this.pausedUntil.set(target.key, Date.now() + FORBIDDEN_PAUSE_MS);
    if (this.current && this.current.key === target.key) this.sent();
  }

  /** Resume typing notices in conversation `key`: a message from the peer may have made it one. */
  resume(key) {
    this.pausedUntil.delete(key);
  }
}

/**
 * The users typing in each conversation, from received Typing frames. Each
 * indicator ends after its `ttl`, on a Typing frame with `active` false, or
 * when a message from its user arrives (ended()). `changed()` is called
 * after every change.
 */
export class TypingIndicators {
  constructor(changed) {
    this.changed = changed;
    /** Conversation key -> Map of user id -> timer that ends the indicator. */
    this.byConversation = new Map();
  }

  /** Apply a received Typing frame; `me` is this user's id. */
  received(typing, me) {
    const sender = Number(typing.sender);
    const group = Number(typing.group);
    if (!sender || sender === me) return;
    const key = group ? `g:${group}` : `u:${sender}`;
    if (!typing.active) {
      this.ended(key, sender);
      return;
    }
    let typists = this.byConversation.get(key);
    if (!typists) {
      typists = new Map();
      this.byConversation.set(key, typists);
    }
    clearTimeout(typists.get(sender));
    const ttlMs = (typing.ttl || DEFAULT_TTL_S) * 1000;
    typists.set(sender, setTimeout(() => this.ended(key, sender), ttlMs));
    this.changed();
  }

  /** End the indicator of `user` in conversation `key`, if shown. */
  ended(key, user) {
    const typists = this.byConversation.get(key);
    if (!typists || !typists.has(user)) return;
    clearTimeout(typists.get(user));
    typists.delete(user);
    if (!typists.size) this.byConversation.delete(key);
    this.changed();
  }

  /** Return the ids of the users typing in conversation `key`, in arrival order. */
  typists(key) {
    const typists = this.byConversation.get(key);
    return typists ? [...typists.keys()] : [];
  }

  clear() {
    for (const typists of this.byConversation.values()) {
      for (const timer of typists.values()) clearTimeout(timer);
    }
    this.byConversation.clear();
  }
}

/** Return "ann is typing…", "ann and bob are typing…" or "3 people are typing…". */
export function describeTyping(names) {
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}
