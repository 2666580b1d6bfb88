// The device's position in the user's inbox (docs/protocol.md, "Reliability
// rules for clients"): entries are stored by seq, and the cursor is the
// highest seq up to which every entry is stored.

export class Inbox {
  /** `cursor`: the highest seq stored without gaps, from the last session. */
  constructor(cursor) {
    this.cursor = cursor;
    this.above = new Set();
    this.head = cursor;
  }

  /**
   * Record that the entry at `seq` is stored and return whether it was new.
   * A seq at or below the cursor, or one seen already, is not new.
   */
  add(seq) {
    this.head = Math.max(this.head, seq);
    if (seq <= this.cursor || this.above.has(seq)) return false;
    this.above.add(seq);
    while (this.above.has(this.cursor + 1)) {
      this.cursor += 1;
      this.above.delete(this.cursor);
    }
    return true;
  }

  /** Note the inbox's highest seq as the server reported it. */
  seen(headSeq) {
    this.head = Math.max(this.head, headSeq);
  }

  /** Entries between the cursor and the highest seq known are missing. */
  hasGap() {
    return this.head > this.cursor;
  }

  /** Continue after `seq` when nothing up to it can arrive, keeping later entries. */
  skipTo(seq) {
    if (seq <= this.cursor) return;
    this.cursor = seq;
    this.head = Math.max(this.head, seq);
    for (const held of this.above) {
      if (held <= seq) this.above.delete(held);
    }
    while (this.above.has(this.cursor + 1)) {
      this.cursor += 1;
      this.above.delete(this.cursor);
    }
  }

  /** Adopt `headSeq` as the cursor, for an inbox that the server reset below the cursor. */
  resetTo(headSeq) {
    this.cursor = headSeq;
    this.head = headSeq;
    this.above.clear();
  }
}
