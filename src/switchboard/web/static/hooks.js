// Extension points of the web chat client for features that the protocol is
// still gaining: typing indicators, presence and read receipts. Each hook is
// a no-op here. A feature replaces the hook's function (hooks.composing =
// ...) from its own module, imported by app.js.
//
// NOTE: until those frames exist, the client shows no typing, presence or
// read state, and its unread counts are its own (reset when a conversation
// is opened) unless the server's conversation list provides them.

export const hooks = {
  /**
   * A frame this client does not handle: a newer frame type (`message` is
   * null and `payload` has the raw bytes) or a known one without a handler.
   */
  frame(type, message, payload) {},

  /**
   * Apply an inbox entry whose `change` field is above 0. Such an entry
   * records a change to a conversation or message (a read position, recall,
   * edit or delete) rather than a message, so the client never shows it.
   * Return true when handled.
   */
  changeEntry(entry) {
    return false;
  },

  /** The user opened `conversation`, whose newest message id is `newestId`: send a read receipt here. */
  conversationOpened(conversation, newestId) {},

  /** The user typed in the composer of `conversation`: send a typing notice here. */
  composing(conversation) {},

  /** Fill `element` (in the thread header) with the peer's presence or typing state. */
  renderStatus(conversation, element) {},
};
