"""The JavaScript codec, run in chromium, against the Python codec's bytes.

Random frames of every type are encoded by the Python codec, decoded by
frames.js from the bytes cut into random pieces, and encoded again: the
bytes must come back unchanged and every field must hold the Python value.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message as ProtobufMessage
from playwright.sync_api import Browser, Page

from switchboard.protocol import pb
from switchboard.protocol.frames import PAYLOAD_TYPES, encode
from tests.support.server import ServerProcess

MAX_SAFE_INTEGER = 2**53 - 1
EDGE_VALUES = {
    32: [0, 1, 127, 128, 300, 2**31 - 1, 2**31, 2**32 - 1],
    64: [0, 1, 127, 128, 2**32, MAX_SAFE_INTEGER, 2**53, 2**63 - 1, 2**64 - 1],
}
TEXTS = ["", "a", "héllo wörld", "日本語", "emoji 😀 outside the BMP", "x" * 300]

DECODE_AND_ENCODE = """
async ({frames, cuts}) => {
  const {FrameDecoder, encodeFrame} = await import("/web/frames.js");
  const pairs = frames.join("").match(/../g);
  const bytes = Uint8Array.from(pairs.map((pair) => parseInt(pair, 16)));
  const decoder = new FrameDecoder();
  const decoded = [];
  let start = 0;
  for (const end of [...cuts, bytes.length]) {
    decoded.push(...decoder.push(bytes.slice(start, end)));
    start = end;
  }
  const hex = (array) =>
    Array.from(array, (byte) => byte.toString(16).padStart(2, "0")).join("");
  const plain = (value) => {
    if (typeof value === "bigint") return {bigint: value.toString()};
    if (value instanceof Uint8Array) return {bytes: hex(value)};
    if (Array.isArray(value)) return value.map(plain);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
    }
    return value;
  };
  return decoded.map(({type, message}) => ({
    type, message: plain(message), encoded: hex(encodeFrame(type, message)),
  }));
}
"""

FRAMING_ERRORS = """
async (cases) => {
  const {FrameDecoder} = await import("/web/frames.js");
  return cases.map((hex) => {
    const bytes = Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16)));
    try {
      const frames = new FrameDecoder(100).push(bytes);
      return {frames: frames.length, unknown: frames.filter((f) => f.payload).length};
    } catch (error) {
      return {error: `${error.constructor.name}: ${error.message}`};
    }
  });
}
"""


@pytest.fixture(scope="module")
def page(browser: Browser, web_server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(web_server.base_url + "/admin")
    yield page
    context.close()


def random_value(field: FieldDescriptor, rng: random.Random, depth: int) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return random_message(field.message_type, rng, depth + 1)
    if field.type == FieldDescriptor.TYPE_ENUM:
        # proto3 enums are open: numbers the schema lacks must survive.
        return rng.choice([*field.enum_type.values_by_number, 99])
    if field.type == FieldDescriptor.TYPE_STRING:
        return rng.choice(TEXTS)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.choice([0, 1, 5, 200]))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    bits = 64 if field.type == FieldDescriptor.TYPE_UINT64 else 32
    if rng.random() < 0.5:
        return rng.choice(EDGE_VALUES[bits])
    return rng.getrandbits(rng.randint(1, bits))


def random_message(descriptor: Descriptor, rng: random.Random, depth: int = 0) -> Any:
    # Every message of the schema is a top-level class of the generated module.
    message = getattr(pb, descriptor.name)()
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and depth > 1:
            continue
        if rng.random() < 0.2:
            continue
        if field.is_repeated:
            items = [random_value(field, rng, depth) for _ in range(rng.randint(0, 3))]
            getattr(message, field.name).extend(items)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(random_value(field, rng, depth))
        else:
            setattr(message, field.name, random_value(field, rng, depth))
    return message


def expected_plain(message: ProtobufMessage) -> dict[str, Any]:
    """Return ``message`` as the JavaScript decoder should represent it."""
    result: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.is_repeated:
            result[field.name] = [plain_value(field, item) for item in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            result[field.name] = (
                expected_plain(value) if message.HasField(field.name) else None
            )
        else:
            result[field.name] = plain_value(field, value)
    return result


def plain_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return expected_plain(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return {"bytes": value.hex()}
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value > MAX_SAFE_INTEGER
    ):
        return {"bigint": str(value)}
    return value


def test_codec_matches_python_bytes(page: Page) -> None:
    rng = random.Random(20261204)
    messages = [
        random_message(cls.DESCRIPTOR, rng)
        for _ in range(40)
        for cls in PAYLOAD_TYPES.values()
    ]
    frames = [encode(message).hex() for message in messages]
    total = sum(len(frame) for frame in frames) // 2
    cuts = sorted(rng.sample(range(1, total), 200))

    decoded = page.evaluate(DECODE_AND_ENCODE, {"frames": frames, "cuts": cuts})

    assert len(decoded) == len(messages)
    for message, frame, result in zip(messages, frames, decoded, strict=True):
        assert result["encoded"] == frame, message
        assert result["message"] == expected_plain(message), message


def test_decoder_enforces_framing_rules(page: Page) -> None:
    cases = {
        "00": {"frames": 1, "unknown": 0},
        "0208": {"frames": 0, "unknown": 0},
        "03ff0801": {"frames": 1, "unknown": 1},
        "8080808001": {"error": "ProtocolError: length prefix longer than 4 bytes"},
        "8000": {"error": "ProtocolError: length prefix is not minimal"},
        "6500": {"error": "ProtocolError: frame of 101 bytes exceeds 100"},
        "0100": {"error": "ProtocolError: frame type 0 with a body"},
        "030102ff": {"error": "ProtocolError: invalid Connect payload"},
    }

    results = page.evaluate(FRAMING_ERRORS, list(cases))

    for (hex_bytes, expected), result in zip(cases.items(), results, strict=True):
        if "error" in expected:
            assert result.get("error", "").startswith(expected["error"]), hex_bytes
        else:
            assert result == expected, hex_bytes
