// Message bubbles of the open conversation: text, pictures and files, and
// group notices. Bodies are inserted as text nodes, never as HTML.

import { request } from "./api.js";
import { MEDIA, NOTICE, parseJson } from "./conversations.js";
import { element, formatBytes, formatClock } from "./dom.js";

// Signed media URLs by media id: {promise, expires_at}. A URL is fetched
// again a minute before it expires.
const mediaUrls = new Map();

function mediaUrl(token, mediaId) {
  const cached = mediaUrls.get(mediaId);
  if (cached && cached.expiresAt - 60000 > Date.now()) return cached.promise;
  const promise = request("GET", `/v1/media/${encodeURIComponent(mediaId)}/url`, { token });
  const entry = { promise, expiresAt: Infinity };
  mediaUrls.set(mediaId, entry);
  promise.then(
    (media) => {
      entry.expiresAt = media.expires_at;
    },
    () => mediaUrls.delete(mediaId),
  );
  return promise;
}

/**
 * Return the element of message `view` ({id, clientId, sender, content_type,
 * text, sent_at, state}). `context`: token, me (user id), group (true in a
 * group) and name(id), which returns a user's name.
 */
export function bubble(view, context) {
  if (view.content_type === NOTICE) {
    return element(
      "div",
      { className: "message notice", "data-id": view.id },
      describeNotice(view.text, context.name),
    );
  }
  const mine = view.sender === context.me;
  const classes = ["message", mine ? "mine" : "theirs", view.state].filter(Boolean);
  const node = element("div", {
    className: classes.join(" "),
    "data-id": view.id || null,
    "data-client-id": view.clientId || null,
  });
  if (context.group && !mine) {
    node.append(element("span", { className: "sender" }, context.name(view.sender)));
  }
  node.append(content(view, context.token));
  const time = view.sent_at ? formatClock(view.sent_at) : "";
  // The read state of the user's own messages changes after the bubble is
  // built, so showReadState fills this element in place.
  const receipt = mine ? element("span", { className: "receipt" }) : null;
  node.append(element("span", { className: "meta" }, time, receipt));
  if (view.reason) node.title = view.reason;
  return node;
}

function content(view, token) {
  if (view.content_type !== MEDIA) {
    return element("span", { className: "text" }, view.text);
  }
  const media = parseJson(view.text);
  if (!media || typeof media.media !== "string") {
    return element("span", { className: "text muted" }, "(invalid file reference)");
  }
  const label = media.name || "file";
  if (String(media.content_type).startsWith("image/")) {
    const image = element("img", { alt: label, "data-media": media.media });
    if (media.width && media.height) {
      image.width = Math.min(media.width, 320);
      image.height = Math.round((image.width * media.height) / media.width);
    }
    mediaUrl(token, media.media).then(
      (urls) => {
        image.src = urls.thumbnail_url || urls.url;
      },
      () => {
        image.alt = `${label} (could not be loaded)`;
      },
    );
    return image;
  }
  const link = element("a", { target: "_blank", rel: "noopener" }, `${label} (${formatBytes(media.size || 0)})`);
  mediaUrl(token, media.media).then((urls) => {
    link.href = urls.url;
  }, () => {});
  return link;
}

/** Return the text of a group notice (docs/protocol.md, "Groups"). */
export function describeNotice(text, name) {
  const notice = parseJson(text) || {};
  const by = notice.by ? name(notice.by) : "someone";
  const users = (notice.users || []).map(name).join(", ");
  switch (notice.event) {
    case "group_created":
      return `${by} created the group “${notice.name}”`;
    case "member_added":
      return `${by} added ${users}${notice.role === "admin" ? " as admins" : ""}`;
    case "member_removed":
      return `${by} removed ${users}`;
    case "member_left":
      return `${users} left the group`;
    case "role_changed":
      return `${by} made ${users} ${notice.role === "admin" ? "admins" : "members"}`;
    case "group_renamed":
      return `${by} renamed the group to “${notice.name}”`;
    default:
      return "The group changed";
  }
}

/** Show `read` ({state, text} or null, see readState) on the bubble `node` of an own message. */
export function showReadState(node, read) {
  const receipt = node.querySelector(".receipt");
  if (!receipt) return;
  const text = read ? ` · ${read.text}` : "";
  if (receipt.textContent !== text) receipt.textContent = text;
  if (read) node.dataset.read = read.state;
  else delete node.dataset.read;
}
