// The chat client of one logged-in device: catch-up by sequence number,
// delivery of sent messages until acknowledged, and the local state that
// survives reloads and network loss (docs/protocol.md, "Reliability rules
// for clients").
//
// A message to send gets the next client_id and waits in the outbox, saved
// in localStorage, until its SendAck. Every (re)connect sends the whole
// outbox again right after Connect, with the same client_ids, so the server
// stores each message once however often the acknowledgement was lost. The
// inbox cursor goes into Connect.last_seq, and the client pulls pages with
// Sync until no gap is left. A large group's messages carry group_seq
// instead: the client keeps a cursor per group and pulls pages with
// TimelineSync (docs/protocol.md, "Large groups").

import { Connection, socketUrl } from "./connection.js";
import { conversationKey, previewOf } from "./conversations.js";
import { FrameType, encodeFrame } from "./frames.js";
import { Inbox } from "./inbox.js";

const SYNC_LIMIT = 200;
const CURSOR_DELAY_MS = 1000;
const RETRY_INTERNAL_MS = 2000;

/** Error codes after which a resend of the same message cannot succeed. */
const PERMANENT = new Map([
  [20, "the recipient does not exist"],
  [21, "the message is invalid"],
  [24, "you are not a member of the group"],
  [25, "the group does not exist"],
]);
const RATE_LIMITED = 40;
const INTERNAL_ERROR = 50;

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

// NOTE: ids and sequence numbers above 2**53 lose precision here, since the
// client keeps them as Numbers; this server's ids are counters far below it.
function toNumber(value) {
  return Number(value);
}

/** Return a decoded Message as an inbox entry with Number ids and the body as text. */
export function entryOf(message) {
  return {
    seq: toNumber(message.seq),
    id: toNumber(message.id),
    sender: toNumber(message.sender),
    recipient: toNumber(message.recipient),
    group: toNumber(message.group),
    content_type: message.content_type,
    text: utf8.decode(message.body),
    sent_at: toNumber(message.sent_at),
    mentions: message.mentions.map(toNumber),
    unread: message.unread || 0,
    change: message.change || 0,
    target: toNumber(message.target || 0),
    group_seq: toNumber(message.group_seq || 0),
  };
}

/**
 * Events: "entry" (detail: an inbox entry, as entryOf returns), "change" (a
 * change entry: one whose `change` is above 0), "ack" ({clientId, entry}),
 * "failed" ({clientId, reason, item}: the message left the outbox unsent),
 * "state" and "ended" (from the Connection), "outbox" (the outbox changed),
 * "connected" (the Connected message, after its sync page is applied),
 * "frame" ({type, message}: a frame this class does not handle) and "error"
 * (an Error frame that refers to no Send).
 */
export class ChatClient extends EventTarget {
  constructor({ token, userId, device, state }) {
    super();
    this.token = token;
    this.userId = userId;
    this.device = device;
    this.state = state;
    this.inbox = new Inbox(state.cursor);
    this.syncing = false;
    /** Large groups: group id -> Inbox of the group's timeline. */
    this.timelines = new Map();
    for (const [group, cursor] of Object.entries(state.timelineCursors)) {
      this.timelines.set(Number(group), new Inbox(Number(cursor) || 0));
    }
    /** Groups with a TimelineSync in flight on this connection. */
    this.timelineSyncs = new Set();
    this.timers = new Map();
    this.clock = { server: Date.now(), at: performance.now() };
    this.connection = new Connection({ url: socketUrl(), opening: () => this.opening() });
    for (const name of ["state", "ended"]) {
      this.connection.addEventListener(name, (event) => this.forward(name, event.detail));
    }
    this.connection.addEventListener("connected", (event) => this.onConnected(event.detail));
    this.connection.addEventListener("frame", (event) => this.onFrame(event.detail));
  }

  start() {
    this.connection.start();
  }

  stop() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.connection.stop();
  }

  /** Messages waiting for their SendAck, oldest first. */
  get outbox() {
    return this.state.outbox;
  }

  /**
   * Queue a message for `to` (a user id) or `group` and send it when
   * connected. `text` is the body: UTF-8 text, or a media reference's JSON
   * for contentType 1. Returns the message's client_id.
   */
  send({ to = 0, group = 0, contentType = 0, text }) {
    this.state.lastClientId += 1;
    const item = {
      client_id: this.state.lastClientId,
      to,
      group,
      content_type: contentType,
      text,
      created_at: Date.now(),
    };
    this.state.outbox.push(item);
    this.state.save();
    this.forward("outbox", null);
    this.connection.sendFrames([sendFrame(item)]);
    return item.client_id;
  }

  /** Send one frame of `type` now; return false when not connected (nothing is queued). */
  sendFrame(type, message) {
    return this.connection.send(type, message);
  }

  // Connecting: Connect carries the cursor; the outbox follows at once.

  opening() {
    this.syncing = false;
    this.timelineSyncs.clear();
    return {
      connect: {
        token: this.token,
        device: this.device,
        last_seq: this.inbox.cursor,
        sync_limit: SYNC_LIMIT,
      },
      pipelined: this.state.outbox.map(sendFrame),
    };
  }

  onConnected(connected) {
    const head = toNumber(connected.head_seq);
    // A cursor above the inbox's head means the server's inbox was reset
    // (error CURSOR_AHEAD); its head becomes the cursor.
    if (this.inbox.cursor > head) this.inbox.resetTo(head);
    const lastClientId = toNumber(connected.last_client_id);
    if (lastClientId > this.state.lastClientId) this.state.lastClientId = lastClientId;
    this.inbox.seen(head);
    this.clock = { server: toNumber(connected.server_time), at: performance.now() };
    this.applyPage(connected.sync);
    for (const item of connected.timelines || []) {
      const timeline = this.timeline(toNumber(item.group));
      timeline.skipTo(toNumber(item.start_seq) - 1);
      timeline.seen(toNumber(item.head_seq));
    }
    this.syncTimelines();
    this.forward("connected", connected);
  }

  /** Return the estimated server time in ms: Connected.server_time plus the time since. */
  serverNow() {
    return this.clock.server + Math.round(performance.now() - this.clock.at);
  }

  /** Fill in what a live push leaves out: the time, and the recipient when it is this user. */
  completePush(entry) {
    if (!entry.sent_at) entry.sent_at = this.serverNow();
    if (!entry.recipient && !entry.group) entry.recipient = this.userId;
    return entry;
  }

  onFrame({ type, message, payload }) {
    switch (type) {
      case FrameType.MESSAGE: {
        const entry = this.completePush(entryOf(message));
        if (entry.group_seq) {
          this.applyTimeline(entry.group, [entry]);
          this.syncTimelines();
          return;
        }
        this.apply([entry]);
        this.syncIfGap();
        return;
      }
      case FrameType.TIMELINE_PAGE:
        this.applyTimelinePage(message);
        return;
      case FrameType.SYNC_RESPONSE:
        this.syncing = false;
        this.applyPage(message);
        return;
      case FrameType.SEND_ACK:
        this.onAck(message);
        return;
      case FrameType.ERROR:
        this.onError(message);
        return;
      default:
        this.forward("frame", { type, message, payload });
    }
  }

  // Catching up: one Sync at a time, from the cursor, until no gap is left.

  applyPage(page) {
    if (!page) return;
    this.inbox.seen(toNumber(page.head_seq));
    const entries = page.messages.map(entryOf);
    this.apply(entries);
    if (page.has_more && entries.length) {
      this.requestSync(entries[entries.length - 1].seq);
    } else {
      this.syncIfGap();
    }
  }

  syncIfGap() {
    if (this.inbox.hasGap()) this.requestSync(this.inbox.cursor);
  }

  requestSync(afterSeq) {
    if (this.syncing) return;
    this.syncing = this.connection.send(FrameType.SYNC, { after_seq: afterSeq, limit: SYNC_LIMIT });
  }

  apply(entries) {
    const before = this.inbox.cursor;
    for (const entry of entries) {
      if (!this.inbox.add(entry.seq)) continue;
      this.index(entry);
      if (entry.change) {
        this.forward("change", entry);
        continue;
      }
      this.forward("entry", entry);
    }
    if (this.inbox.cursor !== before) this.cursorMoved();
  }

  // Large groups: one Inbox per group timeline, caught up with TimelineSync.

  timeline(group) {
    let timeline = this.timelines.get(group);
    if (!timeline) {
      timeline = new Inbox(0);
      this.timelines.set(group, timeline);
    }
    return timeline;
  }

  applyTimelinePage(page) {
    const group = toNumber(page.group);
    this.timelineSyncs.delete(group);
    const timeline = this.timeline(group);
    timeline.skipTo(toNumber(page.start_seq) - 1);
    timeline.seen(toNumber(page.head_seq));
    const added = this.applyTimeline(group, page.messages.map(entryOf));
    // A page that added nothing while a gap remains waits for the next push.
    if (added) this.syncTimelines();
  }

  syncTimelines() {
    for (const [group, timeline] of this.timelines) {
      if (!timeline.hasGap() || this.timelineSyncs.has(group)) continue;
      const request = { group, after_seq: timeline.cursor, limit: SYNC_LIMIT };
      if (this.connection.send(FrameType.TIMELINE_SYNC, request)) {
        this.timelineSyncs.add(group);
      }
    }
  }

  /** Apply timeline entries of `group`; return how many were new. */
  applyTimeline(group, entries) {
    const timeline = this.timeline(group);
    let added = 0;
    for (const entry of entries) {
      if (!timeline.add(entry.group_seq)) continue;
      added += 1;
      this.index(entry);
      if (entry.change) {
        hooks.changeEntry(entry);
        continue;
      }
      this.forward("entry", entry);
    }
    if (added) {
      this.state.timelineCursors[group] = timeline.cursor;
      this.state.save();
    }
    return added;
  }

  // The conversation index is saved with the cursor, so a reloaded page
  // lists every conversation whose entries the cursor has passed.
  index(entry) {
    if (entry.change) return;
    const key = conversationKey(entry, this.userId);
    const current = this.state.conversations[key];
    if (current && current.last && current.last.id > entry.id) return;
    const peer = key.startsWith("u:") ? Number(key.slice(2)) : 0;
    this.state.conversations[key] = {
      peer,
      group: entry.group,
      name: current ? current.name : "",
      last: { id: entry.id, sent_at: entry.sent_at, preview: previewOf(entry.content_type, entry.text) },
    };
  }

  cursorMoved() {
    this.state.cursor = this.inbox.cursor;
    this.state.save();
    this.later("cursor", CURSOR_DELAY_MS, () => {
      this.connection.send(FrameType.CURSOR, { seq: this.inbox.cursor });
    });
  }

  // Acknowledgements and errors of sent messages.

  onAck(ack) {
    const clientId = toNumber(ack.client_id);
    const item = this.takeFromOutbox(clientId);
    if (!item) return;
    const entry = {
      seq: toNumber(ack.seq),
      id: toNumber(ack.id),
      sender: this.userId,
      recipient: item.to,
      group: item.group,
      content_type: item.content_type,
      text: item.text,
      sent_at: toNumber(ack.sent_at) || this.serverNow(),
      mentions: [],
      // A SendAck carries no unread count, and the user's own message
      // changes none (docs/protocol.md, "Keeping counts exact").
      unread: undefined,
      change: 0,
      target: 0,
    };
    // The sending connection gets no Message push for its own entry, so the
    // SendAck is what fills that seq (docs/protocol.md, "SendAck").
    this.forward("ack", { clientId, entry });
    const groupSeq = toNumber(ack.group_seq || 0);
    if (groupSeq) {
      entry.group_seq = groupSeq;
      this.applyTimeline(item.group, [entry]);
      this.syncTimelines();
    } else {
      this.apply([entry]);
    }
    this.state.save();
  }

  onError(error) {
    const clientId = toNumber(error.client_id);
    if (!clientId) {
      this.forward("error", error);
      return;
    }
    if (PERMANENT.has(error.code)) {
      const item = this.takeFromOutbox(clientId);
      if (!item) return;
      this.state.save();
      const reason = `${PERMANENT.get(error.code)}: ${error.reason}`;
      this.forward("failed", { clientId, reason, item });
    } else if (error.code === RATE_LIMITED) {
      // Every later Send of the connection was rejected too: resend them
      // all, in order, once the limit allows.
      this.later("resend", error.retry_after || 1000, () => this.resendFrom(clientId));
    } else if (error.code === INTERNAL_ERROR) {
      this.later(`resend-${clientId}`, RETRY_INTERNAL_MS, () => this.resendFrom(clientId, clientId));
    }
  }

  resendFrom(first, last = Infinity) {
    const items = this.state.outbox.filter((item) => item.client_id >= first && item.client_id <= last);
    this.connection.sendFrames(items.map(sendFrame));
  }

  takeFromOutbox(clientId) {
    const index = this.state.outbox.findIndex((item) => item.client_id === clientId);
    if (index < 0) return null;
    const [item] = this.state.outbox.splice(index, 1);
    this.forward("outbox", null);
    return item;
  }

  later(name, delayMs, callback) {
    if (this.timers.has(name)) return;
    this.timers.set(name, setTimeout(() => {
      this.timers.delete(name);
      callback();
    }, delayMs));
  }

  forward(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

function sendFrame(item) {
  return encodeFrame(FrameType.SEND, {
    to: item.to,
    group: item.group,
    client_id: item.client_id,
    content_type: item.content_type,
    body: utf8Encoder.encode(item.text),
  });
}
