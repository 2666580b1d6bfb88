"""Text from the server made safe to print on a terminal.

A message body or a name may contain newlines, carriage returns and escape
sequences. Printed raw, they would let a sender forge lines that look like
other messages, or move the cursor, recolour or retitle the terminal. Bidi
controls can reorder what the reader sees. The CLI escapes all of them in
its text output. JSON output keeps the exact text.
"""

from __future__ import annotations

import re

__all__ = ["escape"]

# C0 and C1 controls and DEL, the Unicode line and paragraph separators, the
# bidi embedding, override and isolate controls, and lone surrogates (which
# a JSON string can carry but a UTF-8 terminal cannot print).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
    "\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """Return ``text`` with every control character written as an escape.

    A newline becomes ``\\n``, ESC becomes ``\\x1b`` and U+202E becomes
    ``\\u202e``. Other text, backslashes included, is unchanged.
    """
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
