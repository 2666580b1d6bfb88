"""Message content types and the checks each body must pass.

docs/protocol.md, section "Content types", describes each type for client
authors.
"""

from __future__ import annotations

import json
import re
from typing import Any

from switchboard.errors import ErrorCode, RequestError

__all__ = ["MEDIA", "SYSTEM_CONTENT_TYPE", "TEXT", "validate_body"]

TEXT = 0
"""UTF-8 text."""

MEDIA = 1
"""A reference to a file uploaded with ``POST /v1/media``: a UTF-8 JSON object
``{"media": SHA256, "content_type": ..., "size": ..., "name": ...,
"width": ..., "height": ...}``, where ``name``, ``width`` and ``height`` are
optional. Other members are allowed and ignored, for later versions."""

SYSTEM_CONTENT_TYPE = 2
"""A notice of a group change, sent by the server only: a UTF-8 JSON object
with ``event``, ``group``, ``by`` (the acting user) and event fields such as
``users``. Clients may not send it."""

MAX_MEDIA_NAME_LENGTH = 255
"""Characters allowed in a media message's ``name``."""

MAX_COUNT = 2**63 - 1
"""Largest ``size``, ``width`` or ``height`` accepted."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
# type "/" subtype, each an RFC 9110 token, without parameters.
_CONTENT_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}/[!#$%&'*+.^_`|~0-9A-Za-z-]{1,127}"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_body(content_type: int, body: bytes) -> None:
    """Raise RequestError(INVALID_MESSAGE) for a body its content type forbids.

    Every body needs at least one byte, and a text body at least one
    character that is not whitespace. Content types without checks of their
    own are otherwise accepted as opaque bytes. The server's own notices
    do not pass through here, so their content type is rejected.
    """
    if content_type == SYSTEM_CONTENT_TYPE:
        raise RequestError(
            ErrorCode.INVALID_MESSAGE,
            f"content type {SYSTEM_CONTENT_TYPE} is reserved for the server's"
            " group notices; use another content type",
        )
    if content_type == TEXT:
        text = _decode_text(body, "text body")
        if not text or text.isspace():
            raise RequestError(
                ErrorCode.INVALID_MESSAGE,
                "the text is empty or only whitespace; send at least one"
                " character that is not whitespace",
            )
    elif not body:
        raise RequestError(
            ErrorCode.INVALID_MESSAGE,
            f"the body of a content type {content_type} message is empty;"
            " send at least one byte",
        )
    elif content_type == MEDIA:
        _validate_media(body)


def _decode_text(body: bytes, what: str) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise RequestError(
            ErrorCode.INVALID_MESSAGE,
            f"{what} is not valid UTF-8 at byte {exc.start}",
        ) from exc


def _validate_media(body: bytes) -> None:
    # NOTE: the logic layer does not check that the id was uploaded, so an
    # unknown id shows only when its download returns 404.
    text = _decode_text(body, "media body")
    try:
        reference = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid_media(
            f"not valid JSON ({exc.msg} at character {exc.pos})"
        ) from exc
    except RecursionError:
        raise _invalid_media("JSON nested too deeply") from None
    if not isinstance(reference, dict):
        raise _invalid_media("expected a JSON object")

    media = reference.get("media")
    if not isinstance(media, str) or _SHA256.fullmatch(media) is None:
        raise _invalid_media(
            "'media' must be the id from POST /v1/media, 64 lowercase hex"
            f" digits; got {_shown(media)}"
        )
    content_type = reference.get("content_type")
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
        raise _invalid_media(
            "'content_type' must be a type such as 'image/png';"
            f" got {_shown(content_type)}"
        )
    size = reference.get("size")
    if not _is_count(size, minimum=0):
        raise _invalid_media(
            f"'size' must be a whole number of bytes, 0 or more; got {_shown(size)}"
        )
    _check_name(reference.get("name"))
    for dimension in ("width", "height"):
        value = reference.get(dimension)
        if value is not None and not _is_count(value, minimum=1):
            raise _invalid_media(
                f"'{dimension}' must be a whole number of pixels above 0;"
                f" got {_shown(value)}"
            )


def _check_name(name: Any) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_MEDIA_NAME_LENGTH:
        raise _invalid_media(
            f"'name' must be a string of 1 to {MAX_MEDIA_NAME_LENGTH} characters"
        )
    if _CONTROL.search(name):
        raise _invalid_media("'name' must not contain control characters")


def _is_count(value: Any, *, minimum: int) -> bool:
    # bool is a subclass of int, but true is not a size. The maximum lets
    # clients keep the value in a signed 64-bit integer.
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return minimum <= value <= MAX_COUNT


def _shown(value: Any) -> str:
    """Return a JSON value for an error message, cut to 40 characters."""
    text = "missing" if value is None else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _invalid_media(reason: str) -> RequestError:
    return RequestError(ErrorCode.INVALID_MESSAGE, f"invalid media body: {reason}")
