"""Server settings with their defaults and units."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENV_PREFIX", "Settings", "apply_environ", "parse_address"]

ENV_PREFIX = "SWITCHBOARD_"

MESSAGE_OVERHEAD = 256
"""Bytes a Connected, SyncResponse or Message frame needs besides one body."""


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6); a bare host gets the default.

    Raises ValueError with the offending text when the port is not a number
    in 0..65535.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or "]" in port_text:
        host, port_text = text, str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(
            f"invalid address {text!r}: expected HOST:PORT with a port from 0 to 65535"
        )
    return host, int(port_text)


def apply_environ(settings: Any, environ: Mapping[str, str]) -> None:
    """Override fields of the dataclass ``settings`` from ``SWITCHBOARD_<FIELD>``.

    Each value is parsed by the type of the field's current value. Raises
    ValueError naming the variable when a value does not parse.
    """
    for item in dataclasses.fields(settings):
        name = ENV_PREFIX + item.name.upper()
        text = environ.get(name)
        if text is None:
            continue
        current = getattr(settings, item.name)
        try:
            value = type(current)(text)
        except ValueError as exc:
            raise ValueError(
                f"invalid {name}={text!r}: expected {type(current).__name__}"
            ) from exc
        setattr(settings, item.name, value)


@dataclass(slots=True)
class Settings:
    """Settings of ``switchboard serve``. Times are in seconds."""

    data_dir: Path = field(default_factory=lambda: Path("switchboard-data"))
    tcp_host: str = "127.0.0.1"
    tcp_port: int = 7070
    http_host: str = "127.0.0.1"
    http_port: int = 7080
    advertise_host: str = ""
    """Host name put in GET /v1/gateways; empty: the host the client used."""

    heartbeat: int = 30
    """Heartbeat interval sent to clients that request none."""
    min_heartbeat: int = 5
    max_heartbeat: int = 600
    """Maximum heartbeat interval a client may negotiate (adaptive heartbeats)."""
    auth_timeout: float = 5.0
    """Time a new connection has to send a Connect frame, and an HTTP
    connection a whole request head."""
    http_body_timeout: float = 30.0
    """Time an HTTP request body, such as an upload, may go without a byte
    before its connection is closed."""
    max_connections_per_ip: int = 1000
    """Connections one IP address may hold at once; 0: no cap."""

    send_rate: float = 50.0
    """Messages per second one user may send, over all devices; 0: no limit."""
    send_burst: int = 200
    """Messages a user may send at once before send_rate applies."""
    frame_rate: float = 500.0
    """Frames per second read from one connection; faster clients are slowed
    down by reading less, not disconnected. 0: no limit."""
    byte_rate: float = 4 * 1024 * 1024
    """Bytes per second read from one connection, likewise."""
    login_failures_per_account: int = 10
    """Failed logins per account in login_failure_window before logins of
    that account are rejected; 0: no limit."""
    login_failures_per_ip: int = 50
    """Failed logins per IP address in login_failure_window, likewise."""
    login_failure_window: float = 300.0

    max_frame_size: int = 64 * 1024
    """Largest frame accepted, in bytes after the length prefix."""
    max_body_size: int = 16 * 1024
    """Largest message body, in bytes."""
    outbound_limit: int = 1024 * 1024
    """Bytes queued for a client that does not read before it is disconnected."""
    sync_page: int = 100
    """Messages per sync page when the client asks for no limit."""
    max_sync_page: int = 1000
    max_group_size: int = 10_000
    """Most members a group may have."""
    large_group_threshold: int = 500
    """Most members a group may have while groups copy each message into every
    member's inbox; larger groups are rejected until fan-out on read exists."""

    token_ttl: int = 30 * 24 * 3600
    """Lifetime of a login token."""
    synchronous: str = "normal"
    """SQLite durability: ``normal`` survives a process crash, ``full`` a power loss."""
    drain_window: float = 5.0
    """On shutdown, each client gets a Reconnect delay drawn from this window."""
    log_level: str = "info"
    stats_interval: float = 10.0
    """Seconds between two points of the statistics history that the admin
    API returns; it keeps one hour of points."""
    admins: str = ""
    """Comma-separated account names allowed to use the admin API and the
    dashboard; empty: nobody."""
    media_max_size: int = 100 * 1024 * 1024
    """Largest file accepted by POST /v1/media, in bytes."""
    media_url_ttl: int = 3600
    """Lifetime of a signed media download URL, in seconds."""
    media_max_image_pixels: int = 89_478_485
    """Images with more pixels are rejected as invalid, which stops
    decompression bombs. The default is Pillow's own limit."""

    @property
    def admin_names(self) -> frozenset[str]:
        """The account names in ``admins``."""
        return frozenset(
            name.strip() for name in self.admins.split(",") if name.strip()
        )

    def apply_environ(self, environ: Mapping[str, str]) -> None:
        """Override fields from ``SWITCHBOARD_<FIELD>`` variables.

        ``SWITCHBOARD_OUTBOUND_LIMIT=65536`` sets ``outbound_limit``, for
        example. Raises ValueError naming the variable when a value does not
        parse as the field's type.
        """
        apply_environ(self, environ)

    def validate(self) -> None:
        """Raise ValueError naming the setting when values do not fit together."""
        if self.max_body_size + MESSAGE_OVERHEAD > self.max_frame_size:
            raise ValueError(
                f"max_body_size ({self.max_body_size}) plus {MESSAGE_OVERHEAD} bytes"
                f" of message fields must fit in max_frame_size"
                f" ({self.max_frame_size}); raise max_frame_size or lower"
                " max_body_size"
            )
        if not 1 <= self.min_heartbeat <= self.heartbeat <= self.max_heartbeat:
            raise ValueError(
                "heartbeat settings must satisfy 1 <= min_heartbeat <= heartbeat"
                f" <= max_heartbeat; got {self.min_heartbeat}, {self.heartbeat},"
                f" {self.max_heartbeat}"
            )
        for name in ("auth_timeout", "http_body_timeout", "stats_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"invalid {name}={getattr(self, name)}: use a number of"
                    " seconds above 0"
                )
        if self.synchronous not in ("normal", "full"):
            raise ValueError(
                f"invalid synchronous={self.synchronous!r}: use 'normal' or 'full'"
            )
