"""Full-text search of one user's own conversations.

The text a user types is split at whitespace into terms. Each term matches
the words that start with it, ignoring case and diacritics, and a message
must match every term. Terms without a letter or digit match nothing and are
left out. Pages run from the newest match to the oldest; a page's cursor
names where the next one starts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import GroupId, MessageId, UserId
from switchboard.store.base import InboxEntry, Store

__all__ = [
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "SearchPage",
    "decode_cursor",
    "encode_cursor",
    "parse_terms",
    "search",
]

MAX_QUERY_LENGTH = 200
"""Maximum length of the search text, in characters."""
MAX_TERMS = 10
"""Maximum number of words in one search."""


@dataclass(frozen=True, slots=True)
class SearchPage:
    entries: list[InboxEntry]
    """Matches newest first, each with its seq in the searching user's inbox."""
    next_cursor: str | None
    """Cursor of the next page, or None after the last match."""


def parse_terms(text: str) -> list[str]:
    """Split search text into terms; raise RequestError INVALID_ARGUMENT for
    text that is too long, has too many terms or has no letter or digit."""
    if len(text) > MAX_QUERY_LENGTH:
        raise _invalid(
            f"the search text has {len(text)} characters; use at most"
            f" {MAX_QUERY_LENGTH}"
        )
    if _has_surrogate(text):
        raise _invalid("the search text contains a character that is not valid Unicode")
    # SQLite ends an FTS5 query string at a NUL, so NUL separates words.
    words = text.replace("\x00", " ").split()
    terms = [term for term in words if any(c.isalnum() for c in term)]
    if not terms:
        raise _invalid("the search text has no word: give at least one letter or digit")
    if len(terms) > MAX_TERMS:
        raise _invalid(
            f"the search text has {len(terms)} words; use at most {MAX_TERMS}"
        )
    return list(dict.fromkeys(terms))


def encode_cursor(message_id: MessageId) -> str:
    """Return the opaque cursor of the page after ``message_id``."""
    return base64.urlsafe_b64encode(f"m{message_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> MessageId:
    """Return the message id a cursor names; raise RequestError for a bad one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    # "m" and at most 19 digits: every id that fits a signed 64-bit integer.
    if not (text.startswith("m") and text[1:].isdigit() and len(text) <= 20):
        raise _invalid(
            f"invalid cursor {cursor[:40]!r}: pass the next_cursor of the previous page"
        )
    return MessageId(int(text[1:]))


async def search(
    store: Store,
    user_id: UserId,
    text: str,
    *,
    cursor: str | None = None,
    limit: int = 20,
    peer_id: UserId | None = None,
    group_id: GroupId | None = None,
) -> SearchPage:
    """Search the user's inbox for ``text``; raise RequestError for bad input.

    NOTE: the messages of large groups are in their timelines, not in the
    inbox, so the search does not find them.
    """
    terms = parse_terms(text)
    before_id = None if cursor is None else decode_cursor(cursor)
    entries, has_more = await store.search_messages(
        user_id, terms, before_id, limit, peer_id=peer_id, group_id=group_id
    )
    next_cursor = None
    if has_more and entries:
        next_cursor = encode_cursor(entries[-1].message.id)
    return SearchPage(entries, next_cursor)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _invalid(reason: str) -> RequestError:
    return RequestError(ErrorCode.INVALID_ARGUMENT, reason)
