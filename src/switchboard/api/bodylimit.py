"""An ASGI middleware that caps the size of HTTP request bodies.

JSON requests are parsed whole, so without a cap one request with a body of
hundreds of megabytes could exhaust the server's memory before any handler
ran. Media uploads stream to disk under their own limit and are exempt.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit"]

logger = logging.getLogger("switchboard.api")

EXEMPT = frozenset({("POST", "/v1/media")})
"""(method, path) of requests with a limit of their own."""


class BodyLimit:
    """Answers 413 to requests whose body exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in EXEMPT:
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            logger.info(
                "rejected %s %s: body of %d bytes",
                scope["method"],
                scope["path"],
                declared,
            )
            await self._reject(send, declared)
            return

        received = 0

        async def limited_receive() -> Message:
            # A chunked body has no Content-Length: count it as it arrives,
            # and end the request as if the client left once it is too large.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    logger.info(
                        "dropped %s %s: chunked body over %d bytes",
                        scope["method"],
                        scope["path"],
                        self.limit,
                    )
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Send, size: int) -> None:
        body: dict[str, Any] = {
            "error": {
                "code": "content_too_large",
                "message": f"the request body of {size} bytes exceeds the limit of"
                f" {self.limit} bytes",
            }
        }
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1")
            return int(text) if text.isdigit() else None
    return None
