"""Escaping of server text for terminal output."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.cli.terminal import escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello, bob", "hello, bob"),
        ("two\nlines", "two\\nlines"),
        ("\r12:00 alice: forged", "\\r12:00 alice: forged"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("tab\there", "tab\\there"),
        ("\x9b31m", "\\x9b31m"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("lone \ud800", "lone \\ud800"),
        ("naïve 😀 back\\slash", "naïve 😀 back\\slash"),
    ],
)
def test_escape_examples(text: str, expected: str) -> None:
    assert escape(text) == expected


@given(st.text())
def test_escaped_text_has_no_control_characters(text: str) -> None:
    escaped = escape(text)
    for char in escaped:
        assert unicodedata.category(char) not in ("Cc", "Cs"), repr(char)
        assert char not in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"


@given(st.text())
def test_escape_is_idempotent(text: str) -> None:
    assert escape(escape(text)) == escape(text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf"))))
def test_printable_text_is_unchanged(text: str) -> None:
    assert escape(text) == text
