// Read positions and read receipts (docs/protocol.md, "Change", "ReadReceipt"):
// this user's reads, sent as Change frames of kind READ, and who read the
// user's own messages.

import { request } from "./api.js";
import { ENUMS } from "./proto.js";

/** Message ids one GET /v1/groups/{id}/reads may ask about (the server's limit). */
const MAX_COUNT_IDS = 100;
/** Milliseconds to collect receipts before asking for a group's read counts. */
const COUNT_DELAY_MS = 200;

/**
 * Reads of this user, and read counts of the user's group messages.
 * `send(changeRequest)` sends a Change frame and returns whether the
 * connection was open; `changed()` is called when read counts arrive.
 */
export class ReadReceipts {
  constructor({ send, token, changed }) {
    this.send = send;
    this.token = token;
    this.changed = changed;
    this.nextRequestId = 1;
    /** request_id -> the Change frame waiting for its ChangeAck. */
    this.pending = new Map();
    /** Conversation key -> highest message id a read was requested up to. */
    this.requested = new Map();
    /** Message id -> {read, members}, or null while asked for. */
    this.counts = new Map();
    /** Group id -> message ids whose counts the next request fetches. */
    this.queued = new Map();
    this.countTimers = new Map();
  }

  /**
   * Move this user's read position in `conversation` to `messageId`, unless
   * a read up to it was requested already. The request waits for the
   * connection when it is offline, and is sent again after each reconnect
   * until its ChangeAck arrives.
   */
  markRead(conversation, messageId) {
    if ((this.requested.get(conversation.key) || 0) >= messageId) return;
    this.requested.set(conversation.key, messageId);
    for (const [id, pending] of this.pending) {
      if (pending.key === conversation.key) this.pending.delete(id);
    }
    const change = {
      request_id: this.nextRequestId++,
      kind: ENUMS.ChangeKind.CHANGE_READ,
      message_id: messageId,
      peer: conversation.group ? 0 : conversation.peer,
      group: conversation.group,
    };
    this.pending.set(change.request_id, { key: conversation.key, change });
    this.send(change);
  }

  /** Send the reads still without a ChangeAck, after a (re)connect. */
  connected() {
    for (const { change } of this.pending.values()) this.send(change);
  }

  /** Apply a ChangeAck; return the conversation key and read_id of the read, or null for another request. */
  acknowledged(ack) {
    const pending = this.pending.get(Number(ack.request_id));
    if (!pending) return null;
    this.pending.delete(Number(ack.request_id));
    return { key: pending.key, readId: Number(ack.read_id) };
  }

  /** Drop the read an Error frame rejects; return whether the error was for one. */
  rejected(error) {
    const requestId = Number(error.request_id || 0);
    const pending = this.pending.get(requestId);
    if (!pending) return false;
    this.pending.delete(requestId);
    // The read stays in `requested`, so the page does not send it again.
    console.warn(`switchboard: read of ${pending.key} rejected: ${error.reason} (error ${error.code})`);
    return true;
  }

  /**
   * Fetch the read counts of messages `ids` (the user's own, newest last) of
   * `group`, shortly, so that a burst of receipts costs one request. With
   * `all` false, only ids never requested before are fetched.
   */
  countReads(group, ids, all) {
    const wanted = all ? ids : ids.filter((id) => !this.counts.has(id));
    if (!wanted.length) return;
    let queued = this.queued.get(group);
    if (!queued) {
      queued = new Set();
      this.queued.set(group, queued);
    }
    for (const id of wanted) {
      queued.add(id);
      if (!this.counts.has(id)) this.counts.set(id, null);
    }
    if (this.countTimers.has(group)) return;
    this.countTimers.set(group, setTimeout(() => {
      this.countTimers.delete(group);
      this.queued.delete(group);
      this.fetchCounts(group, [...queued].sort((a, b) => a - b));
    }, COUNT_DELAY_MS));
  }

  async fetchCounts(group, ids) {
    // NOTE: only the newest MAX_COUNT_IDS messages get counts; older ones
    // of a long history show no read state.
    const query = ids.slice(-MAX_COUNT_IDS).map((id) => `id=${id}`).join("&");
    try {
      const { reads } = await request("GET", `/v1/groups/${group}/reads?${query}`, { token: this.token });
      for (const item of reads) this.counts.set(item.id, { read: item.read, members: item.members });
      this.changed();
    } catch (error) {
      console.warn(`switchboard: read counts of group ${group} not loaded:`, error);
    }
  }

  clear() {
    for (const timer of this.countTimers.values()) clearTimeout(timer);
    this.countTimers.clear();
    this.queued.clear();
    this.pending.clear();
    this.requested.clear();
    this.counts.clear();
  }
}

/**
 * Return the read state of the user's own stored message `view` in
 * `conversation`, as {state, text}: "read" or "sent" in a one-to-one
 * conversation (by the peer's read position), and in a group "read" when
 * every member read it, else "sent", with the count. Null when unknown.
 */
export function readState(view, conversation, counts) {
  if (!view.id) return null;
  if (!conversation.group) {
    const read = view.id <= (conversation.peerReadId || 0);
    return { state: read ? "read" : "sent", text: read ? "read" : "sent" };
  }
  const count = counts.get(view.id);
  if (!count || !count.members) return null;
  const state = count.read >= count.members ? "read" : "sent";
  return { state, text: `read by ${count.read} of ${count.members}` };
}
