// Length-prefixed frames of the Switchboard protocol (docs/protocol.md,
// "Framing"): varint length N, then a type byte and the protobuf payload.
// N = 0 is a heartbeat, the single byte 00.

import { decodeMessage, encodeMessage } from "./protobuf.js";
import { FrameType, PAYLOAD_TYPES } from "./proto.js";

export { FrameType };

/** A whole heartbeat frame. */
export const HEARTBEAT = new Uint8Array([0]);

/** Maximum size of the length prefix, in bytes. */
export const MAX_PREFIX_BYTES = 4;

/** Frames larger than this (N, in bytes) are rejected, as the server does. */
export const DEFAULT_MAX_FRAME_SIZE = 65536;

export class ProtocolError extends Error {}

function encodePrefix(length) {
  const bytes = [];
  while (length >= 0x80) {
    bytes.push((length & 0x7f) | 0x80);
    length >>>= 7;
  }
  bytes.push(length);
  return bytes;
}

/** Encode one frame of `type` whose payload is the object `message`. */
export function encodeFrame(type, message) {
  const name = PAYLOAD_TYPES[type];
  if (name === undefined) throw new TypeError(`unknown frame type ${type}`);
  const payload = encodeMessage(name, message);
  const prefix = encodePrefix(payload.length + 1);
  const frame = new Uint8Array(prefix.length + 1 + payload.length);
  frame.set(prefix);
  frame[prefix.length] = type;
  frame.set(payload, prefix.length + 1);
  return frame;
}

/** Return the frames in `frames` (Uint8Arrays) as one Uint8Array. */
export function concat(frames) {
  const total = frames.reduce((sum, frame) => sum + frame.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

/**
 * Split received bytes into frames. Bytes may arrive in any pieces: a frame
 * split over two pushes, or several frames in one push.
 */
export class FrameDecoder {
  constructor(maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {
    this.maxFrameSize = maxFrameSize;
    this.buffer = new Uint8Array(0);
  }

  /**
   * Add `bytes` and return every complete frame as {type, message}. A
   * heartbeat is {type: FrameType.HEARTBEAT, message: null}. Throws
   * ProtocolError for bytes that break the framing rules, after which the
   * connection is unusable.
   */
  push(bytes) {
    this.buffer = this.buffer.length ? concat([this.buffer, bytes]) : bytes;
    const frames = [];
    let position = 0;
    for (;;) {
      const prefix = this.readPrefix(position);
      if (prefix === null) break;
      const [length, bodyStart] = prefix;
      if (bodyStart + length > this.buffer.length) break;
      frames.push(this.decodeBody(this.buffer.subarray(bodyStart, bodyStart + length)));
      position = bodyStart + length;
    }
    this.buffer = this.buffer.slice(position);
    return frames;
  }

  // Returns [N, start of the body], or null while the prefix is incomplete.
  readPrefix(position) {
    let length = 0;
    for (let index = 0; index < MAX_PREFIX_BYTES; index++) {
      if (position + index >= this.buffer.length) return null;
      const byte = this.buffer[position + index];
      length += (byte & 0x7f) * 2 ** (7 * index);
      if (byte < 0x80) {
        if (index > 0 && byte === 0) throw new ProtocolError("length prefix is not minimal");
        if (length > this.maxFrameSize) {
          throw new ProtocolError(`frame of ${length} bytes exceeds ${this.maxFrameSize}`);
        }
        return [length, position + index + 1];
      }
    }
    throw new ProtocolError(`length prefix longer than ${MAX_PREFIX_BYTES} bytes`);
  }

  // A type this codec lacks comes back with its raw payload and a null
  // message, so a newer server's frames reach the caller instead of
  // breaking the connection. Type 0 with a body is invalid in every version.
  decodeBody(body) {
    if (body.length === 0) return { type: FrameType.HEARTBEAT, message: null };
    const type = body[0];
    if (type === FrameType.HEARTBEAT) throw new ProtocolError("frame type 0 with a body");
    const name = PAYLOAD_TYPES[type];
    if (name === undefined) return { type, message: null, payload: body.slice(1) };
    try {
      return { type, message: decodeMessage(name, body.subarray(1)) };
    } catch (error) {
      throw new ProtocolError(`invalid ${name} payload: ${error.message}`);
    }
  }
}
