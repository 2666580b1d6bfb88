// The web chat client: login, conversation list, threads and the composer.
//
// The login token lives in sessionStorage (one login per tab); the device
// id, inbox cursor and unsent messages live in localStorage (storage.js).
// Each message is shown once, keyed by its server id, whether it came from
// a push, a sync page, a SendAck or the HTTP history. A message still
// waiting for its SendAck is shown from the outbox, keyed by client_id.

import { ApiError, login, logout, randomDevice, request } from "./api.js";
import { bubble, showReadState } from "./bubbles.js";
import { ChatClient } from "./chat.js";
import { State } from "./connection.js";
import {
  MEDIA,
  NOTICE,
  TEXT,
  conversationKey,
  loadConversations,
  parseJson,
  previewOf,
  sortConversations,
} from "./conversations.js";
import { element, showOnly } from "./dom.js";
import { FrameType } from "./frames.js";
import { PresenceWatch, describePresence } from "./presence.js";
import { ENUMS } from "./proto.js";
import { ReadReceipts, readState } from "./receipts.js";
import { LocalState, deviceId } from "./storage.js";
import { TypingIndicators, TypingSender, describeTyping } from "./typing.js";

const SESSION_KEY = "switchboard.chat.session";
const VIEWS = ["login-view", "chat-view"];
const HISTORY_PAGE = 50;
const FORBIDDEN = 27;

const app = {
  session: null,
  client: null,
  local: null,
  conversations: new Map(),
  threads: new Map(),
  historyLoaded: new Set(),
  failed: new Map(),
  names: new Map(),
  open: null,
  typingSender: null,
  typing: null,
  presence: null,
  receipts: null,
  renderTimer: null,
  refreshTimer: null,
};

// Session and login.

function savedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function device() {
  return deviceId(() => randomDevice("web-"));
}

async function submitLogin(event) {
  event.preventDefault();
  await logIn(false);
}

async function logIn(create) {
  const form = document.getElementById("login-form");
  if (!form.reportValidity()) return;
  const name = form.elements.name.value.trim();
  const password = form.elements.password.value;
  const error = document.getElementById("login-error");
  error.textContent = "";
  try {
    if (create) await request("POST", "/v1/accounts", { json: { name, password } });
    const session = await login(name, password, device());
    app.session = { token: session.token, userId: session.user_id, name, device: session.device };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(app.session));
    form.reset();
    startChat();
  } catch (failure) {
    error.textContent = failure.message;
  }
}

async function logOut(message = "") {
  const session = app.session;
  stopChat();
  sessionStorage.removeItem(SESSION_KEY);
  if (session) await logout(session.token);
  showLogin(message);
}

function showLogin(message = "") {
  document.getElementById("login-error").textContent = message;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("connection-state").textContent = "";
  showOnly(VIEWS, "login-view");
}

// The chat session.

function startChat() {
  const { token, userId, name } = app.session;
  app.names.set(userId, name);
  app.local = new LocalState(userId, app.session.device);
  app.client = new ChatClient({ token, userId, device: app.session.device, state: app.local });
  app.client.addEventListener("entry", (event) => addStored(event.detail, true));
  app.client.addEventListener("ack", (event) => addStored(event.detail.entry, false));
  app.client.addEventListener("failed", (event) => markFailed(event.detail));
  app.client.addEventListener("outbox", scheduleRender);
  app.client.addEventListener("state", (event) => showConnection(event.detail));
  app.client.addEventListener("ended", (event) => sessionEnded(event.detail));
  app.client.addEventListener("connected", connected);
  app.client.addEventListener("change", (event) => applyChange(event.detail));
  app.client.addEventListener("frame", (event) => applyFrame(event.detail));
  app.client.addEventListener("error", (event) => serverError(event.detail));
  startSignals();
  // For debugging from the browser console, and for the browser tests.
  window.switchboardChat = app;

  document.getElementById("who").textContent = name;
  document.getElementById("logout").hidden = false;
  showOnly(VIEWS, "chat-view");
  for (const [key, item] of Object.entries(app.local.conversations)) {
    upsertConversation({ key, unread: 0, ...item });
  }
  app.client.start();
  refreshConversations();
  scheduleRender();
}

function stopChat() {
  if (app.typingSender) app.typingSender.stop();
  if (app.client) app.client.stop();
  stopSignals();
  app.client = null;
  app.conversations.clear();
  app.threads.clear();
  app.historyLoaded.clear();
  app.failed.clear();
  bubbles.clear();
  app.open = null;
  window.switchboardChat = undefined;
  document.getElementById("banner").hidden = true;
}

function showConnection({ state, reason }) {
  const indicator = document.getElementById("connection-state");
  const labels = {
    [State.ONLINE]: "online",
    [State.CONNECTING]: "connecting…",
    [State.OFFLINE]: "offline: messages are sent when the connection is back",
    [State.ENDED]: "disconnected",
  };
  indicator.textContent = labels[state];
  indicator.dataset.state = state;
  indicator.className = `connection ${state === State.ENDED ? State.OFFLINE : state}`;
  indicator.title = reason || "";
  if (state === State.ONLINE) refreshConversations();
}

function sessionEnded({ code, reason }) {
  if (code === 13) {
    showBanner(
      "This account was connected from another tab or device of this browser."
        + " Reload the page to chat here again.",
    );
    return;
  }
  logOut(`You were logged out: ${reason}`);
}

function showBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text;
  banner.hidden = !text;
}

// Conversations.

async function refreshConversations() {
  if (!app.client) return;
  try {
    const list = await loadConversations(app.session.token, app.local.conversations);
    for (const item of list) upsertConversation(item);
    resolveNames([...app.conversations.values()].filter((item) => item.peer).map((item) => item.peer));
    document.getElementById("sidebar-error").textContent = "";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return logOut("Your session has expired.");
    document.getElementById("sidebar-error").textContent = `Conversations not loaded: ${error.message}`;
  }
  scheduleRender();
}

// A group seen first in an inbox entry needs its name from the server;
// entries come in bursts, so one refresh covers them.
function scheduleRefresh() {
  if (app.refreshTimer !== null) return;
  app.refreshTimer = setTimeout(() => {
    app.refreshTimer = null;
    refreshConversations();
  }, 500);
}

function upsertConversation(item) {
  const current = app.conversations.get(item.key);
  if (!current) {
    app.conversations.set(item.key, { unread: 0, unreadSeq: 0, readId: 0, peerReadId: 0, name: "", ...item });
    return app.conversations.get(item.key);
  }
  if (item.name) current.name = item.name;
  if (item.last && (!current.last || item.last.id >= current.last.id)) current.last = item.last;
  setUnread(current, item.unreadSeq || 0, item.unread);
  current.readId = Math.max(current.readId, item.readId || 0);
  current.peerReadId = Math.max(current.peerReadId, item.peerReadId || 0);
  return current;
}

/**
 * Set the conversation's unread count to `unread`, the server's count as of
 * inbox entry `seq`, unless a later entry set it already (docs/protocol.md,
 * "Keeping counts exact").
 */
function setUnread(conversation, seq, unread) {
  if (unread === undefined || seq <= conversation.unreadSeq) return;
  conversation.unread = unread;
  conversation.unreadSeq = seq;
}

function conversationTitle(conversation) {
  if (conversation.name) return conversation.name;
  if (conversation.peer) return nameOf(conversation.peer);
  return `group ${conversation.group}`;
}

async function openByName(event) {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.name.value.trim();
  try {
    const user = await request("GET", `/v1/users/${encodeURIComponent(name)}`, { token: app.session.token });
    app.names.set(user.id, user.name);
    upsertConversation({ key: `u:${user.id}`, peer: user.id, group: 0, name: user.name });
    form.reset();
    openConversation(`u:${user.id}`);
  } catch (error) {
    document.getElementById("sidebar-error").textContent = error.message;
  }
}

async function createGroup(event) {
  event.preventDefault();
  const form = event.target;
  const members = form.elements.members.value.split(",").map((name) => name.trim()).filter(Boolean);
  try {
    const group = await request("POST", "/v1/groups", {
      token: app.session.token,
      json: { name: form.elements.name.value.trim(), members },
    });
    for (const member of group.members) app.names.set(member.id, member.name);
    upsertConversation({
      key: `g:${group.id}`,
      peer: 0,
      group: group.id,
      name: group.name,
      last: { id: 0, sent_at: group.created_at, preview: "" },
    });
    form.reset();
    form.closest("details").open = false;
    openConversation(`g:${group.id}`);
  } catch (error) {
    document.getElementById("sidebar-error").textContent = error.message;
  }
}

function openConversation(key) {
  if (app.open !== key) app.typingSender.stop();
  app.open = key;
  const conversation = app.conversations.get(key);
  document.getElementById("composer").hidden = false;
  document.getElementById("composer-error").textContent = "";
  scheduleRender();
  loadHistory(conversation).then(() => {
    // Receipts of the group arrived while it was closed: count again.
    if (conversation.group && app.open === key) countOwnReads(conversation, true);
  });
  document.querySelector("#composer [name=text]").focus();
}

// Messages: stored ones by server id, per conversation.

function thread(key) {
  let messages = app.threads.get(key);
  if (!messages) {
    messages = new Map();
    app.threads.set(key, messages);
  }
  return messages;
}

function addStored(entry, live) {
  const key = conversationKey(entry, app.session.userId);
  const messages = thread(key);
  const known = messages.has(entry.id);
  messages.set(entry.id, {
    id: entry.id,
    sender: entry.sender,
    content_type: entry.content_type,
    text: entry.text,
    sent_at: entry.sent_at,
  });
  const conversation = upsertConversation({
    key,
    peer: entry.group ? 0 : Number(key.slice(2)),
    group: entry.group,
    last: { id: entry.id, sent_at: entry.sent_at, preview: previewOf(entry.content_type, entry.text) },
  });
  setUnread(conversation, entry.seq, entry.unread);
  if (live && !known && entry.sender !== app.session.userId) {
    // A message from a user ends that user's typing indicator.
    app.typing.ended(key, entry.sender);
    app.typingSender.resume(key);
  }
  wantNames([conversation.peer, entry.sender, ...noticeUsers(entry)]);
  if (entry.group && !conversation.name) scheduleRefresh();
  scheduleRender();
}

function markFailed({ clientId, reason, item }) {
  app.failed.set(clientId, { item, reason });
  document.getElementById("composer-error").textContent = `A message was not sent: ${reason}.`;
  scheduleRender();
}

async function loadHistory(conversation, before = null) {
  if (!before && app.historyLoaded.has(conversation.key)) return;
  app.historyLoaded.add(conversation.key);
  const token = app.session.token;
  const query = `?limit=${HISTORY_PAGE}${before ? `&before=${before}` : ""}`;
  try {
    let path;
    if (conversation.group) {
      path = `/v1/groups/${conversation.group}/messages${query}`;
    } else {
      await resolveNames([conversation.peer]);
      path = `/v1/conversations/${encodeURIComponent(nameOf(conversation.peer))}/messages${query}`;
    }
    const page = await request("GET", path, { token });
    const messages = thread(conversation.key);
    for (const item of page.messages) {
      app.names.set(item.from_id, item.from);
      if (!messages.has(item.id)) messages.set(item.id, historyView(item));
    }
    conversation.hasOlder = page.has_more;
  } catch (error) {
    app.historyLoaded.delete(conversation.key);
    document.getElementById("composer-error").textContent = `History not loaded: ${error.message}`;
  }
  scheduleRender();
}

function historyView(item) {
  let text = item.text;
  if (text === undefined) text = new TextDecoder().decode(base64Bytes(item.body_b64 || ""));
  return { id: item.id, sender: item.from_id, content_type: item.content_type, text, sent_at: item.sent_at };
}

function base64Bytes(text) {
  return Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
}

// Names of users, fetched in batches of at most 100.

const wantedNames = new Set();
let namesTimer = null;

// Entries arrive in bursts (a sync page holds up to 200), so the names they
// need are collected and fetched together.
function wantNames(ids) {
  for (const id of ids) if (id && !app.names.has(id)) wantedNames.add(id);
  if (!wantedNames.size || namesTimer !== null) return;
  namesTimer = setTimeout(() => {
    namesTimer = null;
    const ids = [...wantedNames];
    wantedNames.clear();
    resolveNames(ids);
  }, 50);
}

function noticeUsers(entry) {
  if (entry.content_type !== NOTICE) return [];
  const notice = parseJson(entry.text) || {};
  return [...(Array.isArray(notice.users) ? notice.users : []), notice.by];
}

async function resolveNames(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !app.names.has(id));
  for (let start = 0; start < missing.length; start += 100) {
    const query = missing.slice(start, start + 100).map((id) => `id=${id}`).join("&");
    try {
      const { users } = await request("GET", `/v1/users?${query}`, { token: app.session.token });
      for (const user of users) app.names.set(user.id, user.name);
    } catch (error) {
      console.warn("switchboard: user names not loaded:", error);
    }
  }
  if (missing.length) scheduleRender();
}

function nameOf(id) {
  return app.names.get(id) || `user ${id}`;
}

// Sending.

function target(conversation) {
  return { to: conversation.group ? 0 : conversation.peer, group: conversation.group };
}

function submitMessage(event) {
  event.preventDefault();
  const input = event.target.elements.text;
  const text = input.value;
  if (!text.trim() || !app.open) return;
  app.client.send({ ...target(app.conversations.get(app.open)), contentType: TEXT, text });
  app.typingSender.sent();
  input.value = "";
  scheduleRender();
}

async function sendPicture(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !app.open) return;
  const conversation = app.conversations.get(app.open);
  const note = document.getElementById("composer-error");
  note.textContent = `Uploading ${file.name}…`;
  try {
    // NOTE: an upload that fails (for example while offline) is not
    // retried; the user picks the file again.
    const media = await request("POST", "/v1/media", {
      token: app.session.token,
      body: file,
      headers: { "X-File-Name": encodeURIComponent(file.name.slice(0, 255)) },
    });
    const reference = { media: media.id, content_type: media.content_type, size: media.size };
    if (media.name) reference.name = media.name;
    if (media.width && media.height) Object.assign(reference, { width: media.width, height: media.height });
    app.client.send({ ...target(conversation), contentType: MEDIA, text: JSON.stringify(reference) });
    note.textContent = "";
  } catch (error) {
    note.textContent = `${file.name} was not sent: ${error.message}`;
  }
}

// Typing, presence and read receipts (typing.js, presence.js, receipts.js).

function startSignals() {
  const sender = (type) => (message) => app.client.sendFrame(type, message);
  app.typingSender = new TypingSender(sender(FrameType.TYPING));
  app.typing = new TypingIndicators(scheduleRender);
  app.presence = new PresenceWatch(
    (users) => app.client.sendFrame(FrameType.PRESENCE_SUBSCRIBE, { users }),
    scheduleRender,
  );
  app.receipts = new ReadReceipts({
    send: sender(FrameType.CHANGE),
    token: app.session.token,
    changed: scheduleRender,
  });
}

function stopSignals() {
  for (const part of [app.typing, app.presence, app.receipts]) if (part) part.clear();
  app.typingSender = app.typing = app.presence = app.receipts = null;
}

// The server drops a connection's watch list when the connection closes,
// and a read sent on a lost connection may not have been applied.
function connected() {
  app.presence.connected();
  app.receipts.connected();
}

function applyFrame({ type, message }) {
  switch (type) {
    case FrameType.TYPING:
      app.typing.received(message, app.session.userId);
      return;
    case FrameType.PRESENCE:
      app.presence.received(message);
      return;
    case FrameType.READ_RECEIPT:
      applyReadReceipt(message);
      return;
    case FrameType.CHANGE_ACK: {
      const read = app.receipts.acknowledged(message);
      const conversation = read && app.conversations.get(read.key);
      if (conversation) conversation.readId = Math.max(conversation.readId, read.readId);
      return;
    }
    default:
      // Other frames, of newer protocol versions included, are ignored.
      return;
  }
}

function serverError(error) {
  if (app.receipts.rejected(error)) return;
  if (error.code === FORBIDDEN) {
    app.typingSender.forbidden();
    return;
  }
  console.warn(`switchboard: error ${error.code} from the server: ${error.reason}`);
}

// A change entry of this user's inbox: a read on any of the user's devices,
// or a recall, edit or delete, each with the conversation's unread count.
function applyChange(entry) {
  const conversation = app.conversations.get(conversationKey(entry, app.session.userId));
  if (!conversation) return;
  setUnread(conversation, entry.seq, entry.unread);
  if (entry.change === ENUMS.ChangeKind.CHANGE_READ) {
    conversation.readId = Math.max(conversation.readId, entry.target);
  }
  scheduleRender();
}

function applyReadReceipt(receipt) {
  const group = Number(receipt.group);
  const key = group ? `g:${group}` : `u:${Number(receipt.reader)}`;
  const conversation = app.conversations.get(key);
  if (!conversation) return;
  if (group) {
    if (key === app.open) countOwnReads(conversation, true);
    return;
  }
  conversation.peerReadId = Math.max(conversation.peerReadId, Number(receipt.message_id));
  scheduleRender();
}

// Read counts of the user's own messages in a group: those never asked
// for, or with `all` every one, since a receipt may concern any of them.
function countOwnReads(conversation, all) {
  const me = app.session.userId;
  const ids = [...thread(conversation.key).values()]
    .filter((view) => view.sender === me && view.content_type !== NOTICE)
    .map((view) => view.id)
    .sort((a, b) => a - b);
  app.receipts.countReads(conversation.group, ids, all);
}

// Move the read position over what the open conversation shows, while the
// page is visible and a message from someone else is not read yet.
function readOpenConversation() {
  const conversation = app.conversations.get(app.open);
  if (!conversation || document.visibilityState !== "visible") return;
  const me = app.session.userId;
  let newest = 0;
  let unseen = false;
  for (const view of thread(conversation.key).values()) {
    newest = Math.max(newest, view.id);
    if (view.sender !== me && view.content_type !== NOTICE && view.id > conversation.readId) unseen = true;
  }
  if (unseen) app.receipts.markRead(conversation, newest);
}

function composing(event) {
  const conversation = app.conversations.get(app.open);
  if (!conversation || !app.typingSender || conversation.peer === app.session.userId) return;
  const typingTarget = { key: conversation.key, ...target(conversation) };
  app.typingSender.composing(typingTarget, !event.target.value.trim());
}

// Presence is watched for the peers of one-to-one conversations, the most
// recent first.
function watchPeers() {
  const me = app.session.userId;
  const peers = sortConversations([...app.conversations.values()])
    .map((conversation) => conversation.peer)
    .filter((peer) => peer && peer !== me);
  app.presence.watch(peers);
}

function presenceDot(conversation) {
  if (!conversation.peer || conversation.peer === app.session.userId) return null;
  const state = app.presence.state(conversation.peer);
  if (!state) return null;
  const description = describePresence(state);
  return element("span", {
    className: `presence ${state.online ? "online" : "offline"}`,
    title: description,
    "aria-label": description,
  });
}

// The line under the thread's title: who is typing, else the peer's presence.
function renderStatus(conversation) {
  const status = document.getElementById("thread-status");
  const typists = app.typing.typists(conversation.key);
  let text = "";
  let state = "";
  if (typists.length) {
    text = describeTyping(typists.map(nameOf));
    state = "typing";
  } else if (conversation.peer && conversation.peer !== app.session.userId) {
    const presence = app.presence.state(conversation.peer);
    text = describePresence(presence);
    if (presence) state = presence.online ? "online" : "offline";
    else app.presence.retryUnknown(conversation.peer);
  }
  status.textContent = text;
  status.dataset.state = state;
}

// Rendering, batched so a burst of frames draws once.

function scheduleRender() {
  if (app.renderTimer !== null) return;
  app.renderTimer = setTimeout(() => {
    app.renderTimer = null;
    if (app.client) render();
  }, 16);
}

function render() {
  watchPeers();
  renderConversations();
  renderThread();
  readOpenConversation();
}

function renderConversations() {
  const visible = document.visibilityState === "visible";
  const items = sortConversations([...app.conversations.values()]).map((conversation) => {
    const typing = app.typing.typists(conversation.key).length > 0;
    let preview = conversation.last ? conversation.last.preview : "";
    if (typing) preview = "typing…";
    // The open conversation is read while the page is visible.
    const unread = conversation.key === app.open && visible ? 0 : conversation.unread;
    return element(
      "li",
      {
        "data-key": conversation.key,
        className: conversation.key === app.open ? "active" : "",
        onclick: () => openConversation(conversation.key),
      },
      element("span", { className: "title" }, presenceDot(conversation), conversationTitle(conversation)),
      unread ? element("span", { className: "unread" }, String(unread)) : null,
      element("span", { className: typing ? "preview typing" : "preview" }, preview),
    );
  });
  document.getElementById("conversations").replaceChildren(...items);
}

function renderThread() {
  const conversation = app.conversations.get(app.open);
  const box = document.getElementById("messages");
  if (!conversation) return;
  document.getElementById("thread-title").textContent = conversationTitle(conversation);
  renderStatus(conversation);

  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const context = {
    token: app.session.token,
    me: app.session.userId,
    group: Boolean(conversation.group),
    name: nameOf,
  };
  const stored = [...thread(conversation.key).values()].sort((a, b) => a.id - b.id);
  const unsent = [
    ...[...app.failed.values()].map(({ item, reason }) => unsentView(item, "failed", reason)),
    ...app.client.outbox.map((item) => unsentView(item, "pending", "")),
  ].filter((view) => view.key === conversation.key);
  unsent.sort((a, b) => a.clientId - b.clientId);
  const nodes = [...stored, ...unsent].map((view) => cachedBubble(view, context));
  for (const [index, view] of stored.entries()) {
    if (view.sender === context.me && view.content_type !== NOTICE) {
      showReadState(nodes[index], readState(view, conversation, app.receipts.counts));
    }
  }
  if (conversation.group) countOwnReads(conversation, false);
  if (conversation.hasOlder) nodes.unshift(olderButton(conversation, stored));
  box.replaceChildren(...nodes);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function outboxKey(item) {
  return item.group ? `g:${item.group}` : `u:${item.to}`;
}

function unsentView(item, state, reason) {
  return {
    key: outboxKey(item),
    clientId: item.client_id,
    sender: app.session.userId,
    content_type: item.content_type,
    text: item.text,
    sent_at: 0,
    state,
    reason,
  };
}

// Bubbles are built once per message, state and sender name and then
// reused, so images are not fetched again on each render.
const bubbles = new Map();

function cachedBubble(view, context) {
  if (view.content_type === NOTICE) return bubble(view, context);
  const id = view.id ? `id${view.id}` : `client${view.clientId}`;
  const key = `${id}:${view.state || "sent"}:${context.group ? context.name(view.sender) : ""}`;
  let node = bubbles.get(key);
  if (!node) {
    node = bubble(view, context);
    bubbles.set(key, node);
  }
  return node;
}

function olderButton(conversation, stored) {
  const oldest = stored.length ? stored[0].id : null;
  return element(
    "button",
    { type: "button", className: "secondary older", onclick: () => loadHistory(conversation, oldest) },
    "Load older messages",
  );
}

function init() {
  document.getElementById("login-form").addEventListener("submit", submitLogin);
  document.getElementById("create-account").addEventListener("click", () => logIn(true));
  document.getElementById("logout").addEventListener("click", () => logOut());
  document.getElementById("new-chat").addEventListener("submit", openByName);
  document.getElementById("new-group").addEventListener("submit", createGroup);
  document.getElementById("composer").addEventListener("submit", submitMessage);
  document.getElementById("attach-button").addEventListener("click", () => {
    document.getElementById("attach").click();
  });
  document.getElementById("attach").addEventListener("change", sendPicture);
  const composer = document.querySelector("#composer [name=text]");
  composer.addEventListener("input", composing);
  composer.addEventListener("blur", () => {
    if (app.typingSender) app.typingSender.stop();
  });
  document.addEventListener("visibilitychange", scheduleRender);

  app.session = savedSession();
  if (app.session) startChat();
  else showLogin();
}

init();
