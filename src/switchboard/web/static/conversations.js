// Conversations: their keys, the previews of their last messages, and the
// list shown in the sidebar.

import { ApiError, request } from "./api.js";

export const TEXT = 0;
export const MEDIA = 1;
export const NOTICE = 2;

/** Return the key of the conversation an entry belongs to: "g:GROUP" or "u:PEER". */
export function conversationKey(entry, me) {
  if (entry.group) return `g:${entry.group}`;
  const peer = entry.sender === me ? entry.recipient : entry.sender;
  return `u:${peer}`;
}

/** Return a one-line description of a message body for the conversation list. */
export function previewOf(contentType, text) {
  if (contentType === TEXT) return text.slice(0, 120);
  if (contentType === MEDIA) {
    const media = parseJson(text);
    if (media && String(media.content_type).startsWith("image/")) return "Photo";
    return media && media.name ? `File: ${media.name}` : "File";
  }
  if (contentType === NOTICE) return "Group updated";
  return "Message";
}

export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// Whether the server may have GET /v1/conversations; a 404 settles it for
// the life of the page.
let serverLists = true;

/**
 * Return the user's conversations, newest first, as
 * [{key, peer, group, name, last: {id, sent_at, preview}, unread, unreadSeq,
 * readId, peerReadId}]. `unread` is the count as of inbox seq `unreadSeq`;
 * it and the read positions are undefined when the server does not list
 * conversations.
 *
 * The server's GET /v1/conversations has the complete list with unread
 * counts. On a server without it (404), the list is derived from what this
 * device has seen: `localIndex` (conversations of the inbox entries synced
 * so far, by key) and the groups of GET /v1/groups, which include groups
 * without messages yet.
 */
export async function loadConversations(token, localIndex) {
  if (serverLists) {
    try {
      const page = await request("GET", "/v1/conversations?limit=200", { token });
      return page.conversations.map((item) => fromServer(item, page.head_seq));
    } catch (error) {
      if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 405)) {
        throw error;
      }
      serverLists = false;
    }
  }
  return deriveConversations(token, localIndex);
}

function fromServer(item, headSeq) {
  const group = item.group_id || 0;
  const peer = item.peer_id || 0;
  const last = item.last;
  const text = last.text !== undefined ? last.text : "";
  return {
    key: group ? `g:${group}` : `u:${peer}`,
    peer,
    group,
    name: item.name,
    last: { id: last.id, sent_at: last.sent_at, preview: previewOf(last.content_type, text) },
    unread: item.unread,
    unreadSeq: headSeq,
    readId: item.read_id,
    peerReadId: item.peer_read_id,
  };
}

async function deriveConversations(token, localIndex) {
  const byKey = new Map();
  for (const [key, item] of Object.entries(localIndex)) {
    byKey.set(key, { key, ...item });
  }
  const { groups } = await request("GET", "/v1/groups", { token });
  for (const group of groups) {
    const key = `g:${group.id}`;
    const known = byKey.get(key);
    byKey.set(key, {
      key,
      peer: 0,
      group: group.id,
      last: { id: 0, sent_at: group.created_at, preview: "" },
      ...known,
      name: group.name,
    });
  }
  return sortConversations([...byKey.values()]);
}

/** Sort conversations in place by their last message, newest first, and return them. */
export function sortConversations(conversations) {
  const time = (item) => (item.last ? item.last.sent_at : 0);
  return conversations.sort((a, b) => time(b) - time(a));
}
