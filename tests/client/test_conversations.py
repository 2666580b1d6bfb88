"""The SDK's sans-IO conversation book: counts from lists and inbox entries."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given
from hypothesis import strategies as st

from switchboard.client.conversations import ConversationBook
from switchboard.client.models import (
    Conversation,
    ConversationPage,
    ConversationRead,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageRecalled,
    ReadReceipt,
)

ME, BOB, CAROL = 1, 2, 3
GROUP = 7


def message(seq: int, sender: int = BOB, group: int = 0, text: str = "") -> Message:
    recipient = 0 if group else (ME if sender != ME else BOB)
    return Message(
        id=100 + seq,
        seq=seq,
        sender_id=sender,
        recipient_id=recipient,
        sender_name=None,
        recipient_name=None,
        content_type=0,
        body=(text or f"m{seq}").encode(),
        sent_at=1_000 + seq,
        outgoing=sender == ME,
        group_id=group,
    )


def listed(peer: int, unread: int, last: Message, read_id: int = 0) -> Conversation:
    return Conversation(peer, 0, f"user{peer}", last, unread, read_id, 0)


def test_entries_count_up() -> None:
    book = ConversationBook()

    for seq in (1, 2, 3):
        book.apply_entry(message(seq), unread=seq)

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.unread == 3
    assert conversation.last is not None
    assert conversation.last.seq == 3
    assert book.total_unread == 3


def test_older_entry_changes_no_count() -> None:
    book = ConversationBook()
    book.apply_entry(message(5), unread=4)

    book.apply_entry(message(3), unread=2)

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.unread == 4
    assert conversation.last is not None
    assert conversation.last.seq == 5


def test_own_entry_without_count_keeps_count() -> None:
    book = ConversationBook()
    book.apply_entry(message(1), unread=1)

    book.apply_entry(message(2, sender=ME), unread=None)

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.unread == 1
    assert conversation.last is not None
    assert conversation.last.outgoing is True


def test_list_replaces_older_counts_only() -> None:
    book = ConversationBook()
    book.apply_entry(message(9), unread=5)

    book.apply_page(ConversationPage([listed(BOB, 2, message(4))], False, 8, 2))

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.unread == 5
    assert conversation.name == "user2"
    assert conversation.last is not None
    assert conversation.last.seq == 9


def test_list_after_entries_wins() -> None:
    book = ConversationBook()
    book.apply_entry(message(3), unread=3)

    book.apply_page(ConversationPage([listed(BOB, 0, message(3), 103)], False, 4, 0))

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.unread == 0
    assert conversation.read_id == 103


def test_read_entry_clears_count() -> None:
    book = ConversationBook()
    book.apply_entry(message(1), unread=1)

    book.apply_entry(ConversationRead(2, BOB, 0, 101, 0, 5_000), unread=0)

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert (conversation.unread, conversation.read_id) == (0, 101)


def test_changes_to_last_message() -> None:
    book = ConversationBook()
    book.apply_entry(message(1, text="helo"), unread=1)

    book.apply_entry(MessageEdited(2, 101, BOB, BOB, 0, 0, b"hello", 7), unread=1)
    edited = book.get((BOB, 0))
    book.apply_entry(MessageRecalled(3, 101, BOB, BOB, 0, 8), unread=0)
    recalled = book.get((BOB, 0))
    book.apply_entry(MessageDeleted(4, 101, BOB, 0, 9), unread=0)
    deleted = book.get((BOB, 0))

    assert edited is not None and edited.last is not None
    assert (edited.last.body, edited.last.edited_at) == (b"hello", 7)
    assert recalled is not None and recalled.last is not None
    assert (recalled.last.body, recalled.last.recalled) == (b"", True)
    assert recalled.unread == 0
    assert deleted is not None
    assert deleted.last is None


def test_change_to_other_message_keeps_last() -> None:
    book = ConversationBook()
    book.apply_entry(message(2), unread=2)

    book.apply_entry(MessageRecalled(3, 101, BOB, BOB, 0, 8), unread=1)

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.last is not None
    assert conversation.last.recalled is False
    assert conversation.unread == 1


def test_receipt_moves_peer_position() -> None:
    book = ConversationBook()
    book.apply_entry(message(1, sender=ME), unread=None)

    book.apply_receipt(ReadReceipt(BOB, 0, 101, 5_000))
    book.apply_receipt(ReadReceipt(BOB, 0, 50, 5_001))

    conversation = book.get((BOB, 0))
    assert conversation is not None
    assert conversation.peer_read_id == 101


def test_group_and_peer_ordered_by_last() -> None:
    book = ConversationBook()
    book.apply_entry(message(1), unread=1)
    book.apply_entry(message(2, sender=CAROL, group=GROUP), unread=1)

    keys = [c.key for c in book.conversations()]

    assert keys == [(0, GROUP), (BOB, 0)]
    assert book.total_unread == 2


# The order in which entries arrive (pushes, sync pages, repeats) does not
# change the result.

counts = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=30)


@given(counts, st.randoms(use_true_random=False))
def test_any_arrival_order_gives_same_counts(
    unread_by_seq: list[int], rng: random.Random
) -> None:
    entries = [
        (message(seq, sender=BOB if seq % 3 else CAROL), unread)
        for seq, unread in enumerate(unread_by_seq, start=1)
    ]
    in_order = ConversationBook()
    for item, unread in entries:
        in_order.apply_entry(item, unread)

    shuffled = entries + rng.sample(entries, k=len(entries) // 2)
    rng.shuffle(shuffled)
    book = ConversationBook()
    for item, unread in shuffled:
        book.apply_entry(item, unread)

    assert book.conversations() == in_order.conversations()
    assert book.total_unread == in_order.total_unread


def notice(seq: int, body: str) -> Message:
    return dataclasses.replace(
        message(seq, sender=BOB, group=GROUP), content_type=2, body=body.encode()
    )


def test_group_notices_name_the_group() -> None:
    book = ConversationBook()

    book.apply_entry(notice(1, '{"event":"group_created","name":"trip"}'), 0)
    created = book.get((0, GROUP))
    book.apply_entry(notice(3, '{"event":"group_renamed","name":"trip 2"}'), 0)
    book.apply_entry(notice(2, '{"event":"group_renamed","name":"older"}'), 0)
    book.apply_entry(notice(4, '{"event":"member_added","users":[5]}'), 0)
    book.apply_entry(notice(5, "not json"), 0)

    assert created is not None
    assert created.name == "trip"
    renamed = book.get((0, GROUP))
    assert renamed is not None
    assert renamed.name == "trip 2"
