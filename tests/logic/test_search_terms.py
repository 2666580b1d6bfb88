"""Search text parsing and cursors, and the FTS5 query built from any text."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.errors import ErrorCode, RequestError
from switchboard.ids import MessageId
from switchboard.logic.search import (
    MAX_QUERY_LENGTH,
    decode_cursor,
    encode_cursor,
    parse_terms,
)
from switchboard.store.migrations import MIGRATIONS
from switchboard.store.sqlite_search import match_expression


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("hello", ["hello"]),
        ("  hello   world ", ["hello", "world"]),
        ("hello hello", ["hello"]),
        ('say "hi" - now', ["say", '"hi"', "now"]),
        ("e-mail café", ["e-mail", "café"]),
    ],
)
def test_terms(text: str, terms: list[str]) -> None:
    assert parse_terms(text) == terms


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no word"),
        ("  - ... !!", "no word"),
        ("x" * (MAX_QUERY_LENGTH + 1), "at most 200"),
        (" ".join("abcdefghijk"), "at most 10"),
        ("bad \ud800", "not valid Unicode"),
    ],
)
def test_invalid_text(text: str, fragment: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_terms(text)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert fragment in caught.value.reason


@pytest.mark.parametrize("message_id", [1, 42, 2**63 - 1])
def test_cursor_round_trip(message_id: int) -> None:
    cursor = encode_cursor(MessageId(message_id))
    assert cursor.isascii()
    assert decode_cursor(cursor) == message_id


@pytest.mark.parametrize("cursor", ["", "!!!", "bTEy=x", "eDEy", "m12", "bQ"])
def test_invalid_cursor(cursor: str) -> None:
    with pytest.raises(RequestError) as caught:
        decode_cursor(cursor)
    assert "invalid cursor" in caught.value.reason


def fts_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(MIGRATIONS[7][0])
    conn.execute("INSERT INTO message_search (rowid, text) VALUES (1, 'hello world')")
    return conn


CONN = fts_table()


@given(st.text(max_size=MAX_QUERY_LENGTH))
def test_any_text_makes_a_valid_query(text: str) -> None:
    try:
        terms = parse_terms(text)
    except RequestError:
        return
    # Never an FTS5 syntax error, whatever the user typed.
    CONN.execute(
        "SELECT rowid FROM message_search WHERE message_search MATCH ?",
        (match_expression(terms),),
    ).fetchall()


@given(st.lists(st.text(alphabet='helo wrd"*():^-+', min_size=1), min_size=1))
def test_quoted_terms_keep_their_meaning(terms: list[str]) -> None:
    rows = CONN.execute(
        "SELECT rowid FROM message_search WHERE message_search MATCH ?",
        (match_expression(terms),),
    ).fetchall()
    assert rows in ([], [(1,)])
