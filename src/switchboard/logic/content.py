"""Message content types and the checks each body must pass."""

from __future__ import annotations

from switchboard.errors import ErrorCode, RequestError

__all__ = ["TEXT", "validate_body"]

TEXT = 0
"""UTF-8 text."""


def validate_body(content_type: int, body: bytes) -> None:
    """Raise RequestError(INVALID_MESSAGE) for a body its content type forbids.

    Content types without checks of their own are accepted as opaque bytes.
    """
    if content_type == TEXT:
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            raise RequestError(
                ErrorCode.INVALID_MESSAGE,
                f"text body is not valid UTF-8 at byte {exc.start}",
            ) from exc
