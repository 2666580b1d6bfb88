"""The HTTP protocol for uvicorn: request deadlines and the WebSocket upgrade.

uvicorn would serve a WebSocket upgrade with its own WebSocket protocol and
the ASGI application, which costs tens of KiB per idle connection. This
protocol hands an upgrade request for /v1/ws to the gateway
(:func:`switchboard.gateway.websocket.upgrade`), which owns the connection
from then on. Any other upgrade request, and every upgrade request on a
server without a gateway, gets a 404 response.
"""

from __future__ import annotations

import json
from typing import Any

import h11

from switchboard.api.slowloris import DeadlineH11Protocol
from switchboard.gateway.gateway import Gateway
from switchboard.gateway.websocket import WEBSOCKET_PATH, upgrade

__all__ = ["http_protocol"]


class _GatewayH11Protocol(DeadlineH11Protocol):
    gateway: Gateway | None = None
    """The gateway that serves /v1/ws, or None to reject every upgrade."""

    def _should_upgrade_to_ws(self) -> bool:
        # uvicorn runs no WebSocket protocol of its own (``ws="none"``), which
        # would make it pass upgrade requests to the application as HTTP.
        return True

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        path = event.target.partition(b"?")[0]
        if self.gateway is None:
            self._send_not_found("this server has no WebSocket endpoint")
            return
        if path != WEBSOCKET_PATH:
            self._send_not_found(
                f"no WebSocket endpoint at {path[:100]!r};"
                f" connect to {WEBSOCKET_PATH.decode()}"
            )
            return

        # From here on the gateway owns the connection: uvicorn must neither
        # count it nor close it at shutdown.
        self.connections.discard(self)
        head = [event.method, b" ", event.target, b" HTTP/", event.http_version]
        head.append(b"\r\n")
        for name, value in event.headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"\r\n")
        trailing, _ = self.conn.trailing_data
        upgrade(self.gateway, self.transport, b"".join(head), trailing)

    def _send_not_found(self, message: str) -> None:
        body = json.dumps({"error": {"code": "not_found", "message": message}})
        payload = body.encode()
        self.transport.write(
            b"HTTP/1.1 404 Not Found\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(payload), payload)
        )
        self.transport.close()


def http_protocol(
    request_deadline: float, body_timeout: float, gateway: Gateway | None
) -> type[Any]:
    """Return the protocol class to pass as uvicorn's ``http`` setting.

    ``request_deadline`` and ``body_timeout`` are in seconds. ``gateway``
    serves WebSocket connections at /v1/ws; None rejects them with a 404.
    """
    return type(
        "GatewayH11Protocol",
        (_GatewayH11Protocol,),
        {
            "request_deadline": request_deadline,
            "body_timeout": body_timeout,
            "gateway": gateway,
        },
    )
