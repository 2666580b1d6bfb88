"""Binary encoding of bus items for a bus that crosses processes.

Both items start with a version byte and a fixed header in network byte
order, followed by three strings (a 2-byte length, then UTF-8) and the
frame payload or outbound data, which runs to the end:

- Inbound: version, frame type (1 byte), connection (8), user id (8, signed),
  platform (4); then gateway, device, peer; then the payload.
- Outbound: version, action (1 byte), connection (8), user id (8, signed),
  heartbeat (4); then gateway, device, reason; then the data.
"""

from __future__ import annotations

import struct
from typing import Final

from switchboard.bus.base import Action, Endpoint, Inbound, Outbound
from switchboard.ids import ConnectionId, DeviceId, UserId

__all__ = [
    "VERSION",
    "decode_inbound",
    "decode_outbound",
    "encode_inbound",
    "encode_outbound",
]

VERSION: Final = 1

_HEADER: Final = struct.Struct("!BBQqI")
_LENGTH: Final = struct.Struct("!H")
_ACTIONS: Final = (Action.NONE, Action.ACCEPT, Action.CLOSE)
_ACTION_CODES: Final = {action: code for code, action in enumerate(_ACTIONS)}


def encode_inbound(item: Inbound) -> bytes:
    header = _HEADER.pack(
        VERSION,
        item.frame_type,
        item.endpoint.connection,
        item.user_id,
        item.platform,
    )
    strings = _strings(item.endpoint.gateway, item.device, item.peer)
    return header + strings + item.payload


def decode_inbound(data: bytes) -> Inbound:
    """Decode an Inbound item; raise ValueError if ``data`` is not one."""
    frame_type, connection, user_id, platform = _header(data)
    (gateway, device, peer), offset = _read_strings(data, _HEADER.size, 3)
    return Inbound(
        Endpoint(gateway, ConnectionId(connection)),
        frame_type,
        data[offset:],
        UserId(user_id),
        DeviceId(device),
        platform,
        peer,
    )


def encode_outbound(item: Outbound) -> bytes:
    header = _HEADER.pack(
        VERSION,
        _ACTION_CODES[item.action],
        item.endpoint.connection,
        item.user_id,
        item.heartbeat,
    )
    strings = _strings(item.endpoint.gateway, item.device, item.reason)
    return header + strings + item.data


def decode_outbound(data: bytes) -> Outbound:
    """Decode an Outbound item; raise ValueError if ``data`` is not one."""
    action_code, connection, user_id, heartbeat = _header(data)
    if action_code >= len(_ACTIONS):
        raise ValueError(f"invalid bus item: unknown action code {action_code}")
    (gateway, device, reason), offset = _read_strings(data, _HEADER.size, 3)
    return Outbound(
        Endpoint(gateway, ConnectionId(connection)),
        data[offset:],
        _ACTIONS[action_code],
        user_id=UserId(user_id),
        device=DeviceId(device),
        heartbeat=heartbeat,
        reason=reason,
    )


def _header(data: bytes) -> tuple[int, int, int, int]:
    if len(data) < _HEADER.size:
        raise ValueError(
            f"invalid bus item: {len(data)} bytes, shorter than the"
            f" {_HEADER.size}-byte header"
        )
    version, kind, connection, user_id, number = _HEADER.unpack_from(data)
    if version != VERSION:
        raise ValueError(
            f"invalid bus item: version {version}; this process reads version"
            f" {VERSION}, so run the same Switchboard release everywhere"
        )
    return kind, connection, user_id, number


def _strings(*values: str) -> bytes:
    parts = []
    for value in values:
        encoded = value.encode()
        if len(encoded) > 0xFFFF:
            raise ValueError(f"string of {len(encoded)} bytes too long for a bus item")
        parts.append(_LENGTH.pack(len(encoded)) + encoded)
    return b"".join(parts)


def _read_strings(data: bytes, offset: int, count: int) -> tuple[list[str], int]:
    values = []
    for _ in range(count):
        if offset + _LENGTH.size > len(data):
            raise ValueError("invalid bus item: truncated inside its strings")
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise ValueError("invalid bus item: truncated inside its strings")
        try:
            values.append(data[offset : offset + length].decode())
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid bus item: string is not UTF-8: {exc}") from exc
        offset += length
    return values, offset
