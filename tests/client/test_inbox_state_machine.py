"""The SDK's sync logic as a state machine against a model server inbox.

Hypothesis drives one device's :class:`Inbox` through any interleaving of
what a mobile network does to it: entries stored on the server, pushes that
arrive late, twice or never, sync pages, Connected frames announcing the
head, the application taking entries, and restarts that keep only the saved
cursor. After every step the device has handed out exactly the entries
1..k, each once and in order; at the end, syncing until no gap is left
hands out everything the server stored.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from switchboard.client.inbox import Inbox

PAGE_LIMIT = 3
"""Entries per sync page: small, so that catching up takes several pages."""


class DeviceSync(RuleBasedStateMachine):
    """One device's inbox against the server's, entry ``n`` being ``f"m{n}"``."""

    def __init__(self) -> None:
        super().__init__()
        self.stored = 0
        """Entries the server stored: sequences 1..stored."""
        self.inbox: Inbox[str] = Inbox()
        self.handed_out: list[str] = []

    @rule()
    def server_stores(self) -> None:
        self.stored += 1

    @precondition(lambda self: self.stored > 0)
    @rule(data=st.data())
    def push_arrives(self, data: st.DataObject) -> None:
        # Any stored entry: late, repeated, or after a newer one.
        seq = data.draw(st.integers(min_value=1, max_value=self.stored))
        self.inbox.add(seq, f"m{seq}")

    @rule()
    def connected(self) -> None:
        # Connected carries the server's head and a first page after last_seq.
        self.inbox.note_head(self.stored)
        self._page_after(self.inbox.contiguous)

    @rule()
    def sync_if_gap(self) -> None:
        after = self.inbox.gap()
        if after is not None:
            self._page_after(after)

    @rule(count=st.integers(min_value=1, max_value=5))
    def app_takes(self, count: int) -> None:
        for _ in range(count):
            entry = self.inbox.pop()
            if entry is None:
                return
            self.handed_out.append(entry)

    @rule()
    def restart(self) -> None:
        # Only the cursor survives; held entries come again from the server.
        self.inbox = Inbox(self.inbox.delivered)

    def _page_after(self, after: int) -> None:
        last = min(self.stored, after + PAGE_LIMIT)
        for seq in range(after + 1, last + 1):
            self.inbox.add(seq, f"m{seq}")
        self.inbox.note_head(self.stored)

    @invariant()
    def handed_out_once_and_in_order(self) -> None:
        count = len(self.handed_out)
        assert self.handed_out == [f"m{n}" for n in range(1, count + 1)]
        assert self.inbox.delivered == count

    @invariant()
    def cursor_never_passes_the_server(self) -> None:
        assert self.inbox.delivered <= self.inbox.contiguous <= self.stored
        assert self.inbox.head <= self.stored

    @invariant()
    def holds_nothing_already_handed_out(self) -> None:
        # Entries held are distinct sequences above the cursor.
        assert len(self.inbox) <= self.inbox.head - self.inbox.delivered

    @invariant()
    def gap_reported_while_one_is_known(self) -> None:
        gap = self.inbox.gap()
        if self.inbox.head > self.inbox.contiguous:
            assert gap == self.inbox.contiguous
        else:
            assert gap is None

    def teardown(self) -> None:
        # Catching up: Connected, then Sync until no gap is left.
        self.connected()
        for _ in range(self.stored + 1):
            self.sync_if_gap()
        self.app_takes(self.stored + 1)
        assert self.handed_out == [f"m{n}" for n in range(1, self.stored + 1)]


DeviceSync.TestCase.settings = settings(max_examples=200, stateful_step_count=40)
test_device_sync = DeviceSync.TestCase
