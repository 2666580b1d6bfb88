"""Listening sockets bound before a server starts, with errors that name them."""

from __future__ import annotations

import socket

__all__ = ["bind"]


def bind(host: str, port: int, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """Return a listening TCP socket on ``host:port`` (port 0: any free one).

    Raises OSError, naming the address, when it cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from exc
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {reason}") from exc
    listener.setblocking(False)
    return listener
