"""HTTP ``Range`` requests for a single byte range (RFC 9110, section 14)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ByteRange", "RangeNotSatisfiable", "parse_range"]

_RANGE_SPEC = re.compile(r"bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*", re.ASCII)


class RangeNotSatisfiable(Exception):
    """No byte of the requested range lies within the representation."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` up to ``end`` (exclusive) of a representation."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        """Return the ``Content-Range`` value of a 206 response."""
        return f"bytes {self.start}-{self.end - 1}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Return the byte range a ``Range`` header selects from ``size`` bytes.

    Returns None when the whole representation is to be sent: no header, a
    header that does not parse or is invalid (last before first), or several
    ranges, which RFC 9110 lets a server ignore. A last position beyond the
    end is cut to the end. Raises RangeNotSatisfiable when the first position
    is at or beyond the end, or for a suffix range of 0 bytes.
    """
    if header is None:
        return None
    match = _RANGE_SPEC.fullmatch(header)
    if match is None:
        return None
    first, last = match[1], match[2]
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = size if not last else min(int(last) + 1, size)
    return ByteRange(start, end)
