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
    login_failures_per_account_ip: int = 10
    """Failed logins of one account from one IP address in
    login_failure_window before that address's logins to that account are
    rejected; 0: no limit."""
    login_failures_per_ip: int = 50
    """Failed logins from one IP address in login_failure_window before its
    logins to any account are rejected, with a wait that doubles on each
    rejection in a row; 0: no limit."""
    login_failures_per_account: int = 100
    """Failed logins of one account from all addresses in
    login_failure_window before each login to it is slowed down by
    login_slowdown, not rejected; 0: no limit."""
    login_slowdown: float = 2.0
    """Seconds each login to an account over login_failures_per_account waits
    before its password is checked."""
    login_failure_window: float = 300.0
    """Seconds over which the login limits refill."""

    max_frame_size: int = 64 * 1024
    """Largest frame accepted, in bytes after the length prefix."""
    max_body_size: int = 16 * 1024
    """Largest message body, in bytes."""
    max_request_size: int = 1024 * 1024
    """Largest HTTP request body, in bytes, but for media uploads, which have
    media_max_size."""
    outbound_limit: int = 1024 * 1024
    """Bytes queued for a client that does not read before it is disconnected."""
    sync_page: int = 100
    """Messages per sync page when the client asks for no limit."""
    max_sync_page: int = 1000
    conversation_page: int = 50
    """Conversations per list page when the client requests no limit."""
    max_conversation_page: int = 200
    """Largest conversation list page a client may request."""
    recall_window: float = 120.0
    """Time after sending within which the sender may recall a message; 0:
    no limit."""
    edit_window: float = 0.0
    """Time after sending within which the sender may edit a message; 0: no
    limit."""
    max_online_mobile: int = 1
    """Devices on Android or iOS one user may have online at once; a newer
    connection closes the oldest one with SESSION_REPLACED. 0: no limit."""
    max_online_web: int = 0
    """Web devices one user may have online at once, likewise."""
    max_online_desktop: int = 0
    """Desktop devices one user may have online at once, likewise."""
    max_online_other: int = 0
    """Command-line and unspecified devices one user may have online at once,
    likewise."""
    max_group_size: int = 10_000
    """Most members a group may have."""
    large_group_threshold: int = 500
    """Most members a group may have while it copies each message into every
    member's inbox (fan-out on write). A group that grows larger switches to
    one group timeline that members read (fan-out on read), for good."""
    group_history_on_join: str = "join"
    """Timeline entries from before its join that a new member of a large
    group receives: ``join`` none, ``all`` every one, or a number of the
    latest ones."""

    typing_rate: float = 2.0
    """Typing frames per second one user may send; faster ones are dropped.
    0: no limit."""
    typing_burst: int = 5
    """Typing frames a user may send at once before typing_rate applies."""
    typing_ttl: int = 6
    """Seconds a typing indicator stays on without a refresh; clients that
    type refresh it more often."""
    presence_interval: float = 2.0
    """Shortest time between two presence changes of one user sent to its
    watchers; changes in between are merged into the last one."""
    max_presence_users: int = 500
    """Most users one connection may watch the presence of."""

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
    dashboard; empty: nobody. POST /v1/accounts rejects these names unless
    the request carries the admin key, so nobody else can register them."""
    admin_key: str = ""
    """Admin key in hex (64 digits) that creating an account named in
    ``admins`` requires; empty: ``switchboard serve`` keeps a random key in
    ``data_dir/admin.key``, and a cluster's dispatcher has none."""
    tls_cert: str = ""
    """PEM file with the server's certificate chain; set with ``tls_key`` to
    serve TLS on the TCP gateway and HTTPS and WSS on the HTTP port."""
    tls_key: str = ""
    """PEM file with the private key of ``tls_cert``."""
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

    @property
    def history_on_join(self) -> int | None:
        """``group_history_on_join`` as a number of entries; None for all.

        Raises ValueError when the setting is invalid.
        """
        text = self.group_history_on_join.strip().lower()
        if text == "join":
            return 0
        if text == "all":
            return None
        if text.isdigit():
            return int(text)
        raise ValueError(
            f"invalid group_history_on_join={self.group_history_on_join!r}: use"
            " 'join', 'all' or a number of messages"
        )

    @property
    def tls(self) -> bool:
        """Whether the server serves TLS."""
        return bool(self.tls_cert)

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
        for name in (
            "auth_timeout",
            "http_body_timeout",
            "stats_interval",
            "login_failure_window",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"invalid {name}={getattr(self, name)}: use a number of"
                    " seconds above 0"
                )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError(
                "tls_cert and tls_key go together: set both to serve TLS, or neither"
            )
        for name in (
            "max_online_mobile",
            "max_online_web",
            "max_online_desktop",
            "max_online_other",
        ):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"invalid {name}={getattr(self, name)}: use 0 for no limit,"
                    " or the number of devices allowed online at once"
                )
        if self.recall_window < 0 or self.edit_window < 0:
            raise ValueError(
                f"invalid recall_window={self.recall_window:g} or edit_window="
                f"{self.edit_window:g}: use 0 for no limit, or seconds"
            )
        if self.admin_key and not _is_hex_key(self.admin_key):
            raise ValueError(
                "invalid admin_key: use 64 hex digits (32 bytes), for example"
                " the output of `openssl rand -hex 32`"
            )
        _ = self.history_on_join  # raises ValueError when invalid
        if self.large_group_threshold < 1 or self.max_group_size < 1:
            raise ValueError(
                f"invalid large_group_threshold={self.large_group_threshold} or"
                f" max_group_size={self.max_group_size}: use 1 or more members"
            )
        if self.synchronous not in ("normal", "full"):
            raise ValueError(
                f"invalid synchronous={self.synchronous!r}: use 'normal' or 'full'"
            )


def _is_hex_key(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 32
    except ValueError:
        return False
