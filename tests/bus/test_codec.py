"""Encoding of bus items: round trips and rejected input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.bus.base import Action, Endpoint, Inbound, Outbound
from switchboard.bus.codec import (
    decode_inbound,
    decode_outbound,
    encode_inbound,
    encode_outbound,
)
from switchboard.ids import ConnectionId, DeviceId, UserId

texts = st.text(max_size=80)
endpoints = st.builds(Endpoint, texts, st.integers(0, 2**64 - 1).map(ConnectionId))
user_ids = st.integers(-(2**63), 2**63 - 1).map(UserId)
inbound_items = st.builds(
    Inbound,
    endpoints,
    st.integers(0, 255),
    st.binary(max_size=300),
    user_ids,
    texts.map(DeviceId),
    st.integers(0, 2**32 - 1),
    texts,
)
outbound_items = st.builds(
    Outbound,
    endpoints,
    st.binary(max_size=300),
    st.sampled_from(Action),
    user_id=user_ids,
    device=texts.map(DeviceId),
    heartbeat=st.integers(0, 2**32 - 1),
    reason=texts,
)


@given(inbound_items)
@settings(deadline=None)  # a loaded machine must not fail these
def test_inbound_round_trip(item: Inbound) -> None:
    assert decode_inbound(encode_inbound(item)) == item


@given(outbound_items)
@settings(deadline=None)  # a loaded machine must not fail these
def test_outbound_round_trip(item: Outbound) -> None:
    assert decode_outbound(encode_outbound(item)) == item


@given(inbound_items, st.data())
@settings(deadline=None)  # a loaded machine must not fail these
def test_truncated_inbound_is_rejected_or_shorter(
    item: Inbound, data: st.DataObject
) -> None:
    encoded = encode_inbound(item)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decoded = decode_inbound(encoded[:cut])
    except ValueError:
        return
    # Only the payload, which runs to the end, can lose bytes unnoticed.
    assert decoded.payload == item.payload[: len(decoded.payload)]
    assert decoded.peer == item.peer


@given(st.binary(max_size=64))
@settings(deadline=None)  # a loaded machine must not fail these
def test_random_bytes_decode_or_raise_value_error(data: bytes) -> None:
    for decode in (decode_inbound, decode_outbound):
        with contextlib.suppress(ValueError):
            decode(data)


def test_other_version_is_rejected() -> None:
    item = Inbound(
        Endpoint("gw", ConnectionId(1)), 1, b"", UserId(0), DeviceId(""), 0, ""
    )
    encoded = bytearray(encode_inbound(item))
    encoded[0] = 2

    with pytest.raises(ValueError, match="version 2"):
        decode_inbound(bytes(encoded))


def test_unknown_action_is_rejected() -> None:
    item = Outbound(Endpoint("gw", ConnectionId(1)), b"")
    encoded = bytearray(encode_outbound(item))
    encoded[1] = 9

    with pytest.raises(ValueError, match="unknown action code 9"):
        decode_outbound(bytes(encoded))


def test_invalid_utf8_is_rejected() -> None:
    item = Inbound(
        Endpoint("gw", ConnectionId(1)), 1, b"", UserId(0), DeviceId(""), 0, ""
    )
    encoded = bytearray(encode_inbound(item))
    header = len(encoded) - 2 - 2 - 2 - 2  # before the gateway's bytes
    encoded[header + 2] = 0xFF

    with pytest.raises(ValueError, match="not UTF-8"):
        decode_inbound(bytes(encoded))
