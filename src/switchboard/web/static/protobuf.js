// Protobuf (proto3) binary encoding driven by the generated tables in proto.js.
//
// A decoded message is a plain object with a property per field, named as in
// the .proto file. Fields missing from the bytes get proto3 defaults: 0,
// false, "", an empty Uint8Array, [] for repeated fields and null for message
// fields. 64-bit integers decode to a Number when they fit in
// Number.MAX_SAFE_INTEGER and to a BigInt otherwise, so no value loses
// precision; encoding accepts either. Unknown fields are skipped, as protobuf
// requires, so a newer server can add fields.

import { MESSAGES } from "./proto.js";

export class DecodeError extends Error {}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const WIRE_TYPES = {
  int32: VARINT, int64: VARINT, uint32: VARINT, uint64: VARINT,
  sint32: VARINT, sint64: VARINT, bool: VARINT,
  fixed64: FIXED64, sfixed64: FIXED64, double: FIXED64,
  fixed32: FIXED32, sfixed32: FIXED32, float: FIXED32,
  string: LENGTH_DELIMITED, bytes: LENGTH_DELIMITED,
};

const fieldsByNumber = new Map();

function fieldsOf(name) {
  const fields = MESSAGES[name];
  if (fields === undefined) throw new TypeError(`unknown message type ${name}`);
  return fields;
}

function lookup(name) {
  let table = fieldsByNumber.get(name);
  if (table === undefined) {
    table = new Map(fieldsOf(name).map((field) => [field[0], field]));
    fieldsByNumber.set(name, table);
  }
  return table;
}

function scalarType(type, kind) {
  return kind === "enum" ? "int32" : type;
}

// Writing.

class Writer {
  constructor() {
    this.buffer = new Uint8Array(64);
    this.length = 0;
  }

  reserve(count) {
    if (this.length + count <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + count));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  byte(value) {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bytes(value) {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  varint(value) {
    if (typeof value === "bigint" || value > Number.MAX_SAFE_INTEGER || value < 0) {
      let big = BigInt.asUintN(64, BigInt(value));
      while (big >= 0x80n) {
        this.byte(Number(big & 0x7fn) | 0x80);
        big >>= 7n;
      }
      this.byte(Number(big));
      return;
    }
    while (value >= 0x80) {
      this.byte((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.byte(value);
  }

  fixed(value, size, setter) {
    const view = new DataView(new ArrayBuffer(size));
    setter(view, value);
    this.bytes(new Uint8Array(view.buffer));
  }

  finish() {
    return this.buffer.slice(0, this.length);
  }
}

function checkInteger(value, name) {
  if (typeof value === "bigint") return;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`field ${name}: ${String(value)} is not an integer`);
  }
}

function writeScalar(writer, type, value, name) {
  switch (type) {
    case "string":
      writer.varint(utf8Encoder.encode(value).length);
      writer.bytes(utf8Encoder.encode(value));
      return;
    case "bytes":
      writer.varint(value.length);
      writer.bytes(value);
      return;
    case "bool":
      writer.byte(value ? 1 : 0);
      return;
    case "sint32":
    case "sint64": {
      checkInteger(value, name);
      const big = BigInt(value);
      writer.varint(big >= 0n ? big * 2n : -big * 2n - 1n);
      return;
    }
    case "fixed32":
      return writer.fixed(value, 4, (view, v) => view.setUint32(0, v, true));
    case "sfixed32":
      return writer.fixed(value, 4, (view, v) => view.setInt32(0, v, true));
    case "float":
      return writer.fixed(value, 4, (view, v) => view.setFloat32(0, v, true));
    case "fixed64":
      return writer.fixed(value, 8, (view, v) => view.setBigUint64(0, BigInt(v), true));
    case "sfixed64":
      return writer.fixed(value, 8, (view, v) => view.setBigInt64(0, BigInt(v), true));
    case "double":
      return writer.fixed(value, 8, (view, v) => view.setFloat64(0, v, true));
    default:
      // int32, int64, uint32, uint64: negative values take ten bytes.
      checkInteger(value, name);
      writer.varint(value);
  }
}

function isDefault(value, type, kind) {
  if (value === undefined || value === null) return true;
  if (kind === "message") return false;
  if (type === "string") return value === "";
  if (type === "bytes") return value.length === 0;
  if (type === "bool") return !value;
  return value === 0 || value === 0n;
}

function writeField(writer, field, value) {
  const [number, name, type, kind, repeated] = field;
  if (!repeated) {
    if (isDefault(value, type, kind)) return;
    writeOne(writer, field, value);
    return;
  }
  if (!value || value.length === 0) return;
  const wireType = kind === "message" ? LENGTH_DELIMITED : WIRE_TYPES[scalarType(type, kind)];
  if (wireType === LENGTH_DELIMITED) {
    for (const item of value) writeOne(writer, field, item);
    return;
  }
  // proto3 packs repeated numbers: one length-delimited run of values.
  const packed = new Writer();
  for (const item of value) writeScalar(packed, scalarType(type, kind), item, name);
  writer.varint(number * 8 + LENGTH_DELIMITED);
  writer.varint(packed.length);
  writer.bytes(packed.finish());
}

function writeOne(writer, field, value) {
  const [number, name, type, kind] = field;
  if (kind === "message") {
    const body = encodeMessage(type, value);
    writer.varint(number * 8 + LENGTH_DELIMITED);
    writer.varint(body.length);
    writer.bytes(body);
    return;
  }
  const scalar = scalarType(type, kind);
  writer.varint(number * 8 + WIRE_TYPES[scalar]);
  writeScalar(writer, scalar, value, name);
}

/** Encode `value`, an object with the fields of message `name`, to bytes. */
export function encodeMessage(name, value) {
  const writer = new Writer();
  for (const field of fieldsOf(name)) writeField(writer, field, value[field[1]]);
  return writer.finish();
}

// Reading.

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.position = 0;
  }

  atEnd() {
    return this.position >= this.bytes.length;
  }

  take(count) {
    if (this.position + count > this.bytes.length) {
      throw new DecodeError("message ends inside a field");
    }
    const start = this.position;
    this.position += count;
    return start;
  }

  // Returns a Number while the value fits in 49 bits (seven bytes), else a
  // BigInt, so no precision is lost on the way.
  varint() {
    let value = 0;
    let multiplier = 1;
    for (let index = 0; index < 10; index++) {
      const byte = this.bytes[this.take(1)];
      if (index === 7) return this.varintTail(value, byte);
      value += (byte & 0x7f) * multiplier;
      if (byte < 0x80) return value;
      multiplier *= 0x80;
    }
    throw new DecodeError("varint longer than ten bytes");
  }

  varintTail(low, byte) {
    let value = BigInt(low);
    let shift = 49n;
    for (let index = 7; index < 10; index++) {
      if (index > 7) byte = this.bytes[this.take(1)];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, value);
      shift += 7n;
    }
    throw new DecodeError("varint longer than ten bytes");
  }

  lengthDelimited() {
    const length = Number(this.varint());
    const start = this.take(length);
    return this.bytes.subarray(start, start + length);
  }

  skip(wireType) {
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) this.take(8);
    else if (wireType === LENGTH_DELIMITED) this.lengthDelimited();
    else if (wireType === FIXED32) this.take(4);
    else throw new DecodeError(`unsupported wire type ${wireType}`);
  }
}

function compact(big) {
  return big >= -Number.MAX_SAFE_INTEGER && big <= Number.MAX_SAFE_INTEGER
    ? Number(big)
    : big;
}

function readScalar(reader, type) {
  switch (type) {
    case "string":
      return utf8Decoder.decode(reader.lengthDelimited());
    case "bytes":
      return reader.lengthDelimited().slice();
    case "bool":
      return reader.varint() !== 0;
    case "uint32":
      return Number(BigInt.asUintN(32, BigInt(reader.varint())));
    case "int32":
      return Number(BigInt.asIntN(32, BigInt(reader.varint())));
    case "uint64":
      return compact(BigInt.asUintN(64, BigInt(reader.varint())));
    case "int64":
      return compact(BigInt.asIntN(64, BigInt(reader.varint())));
    case "sint32":
    case "sint64": {
      const zigzag = BigInt(reader.varint());
      return compact(zigzag & 1n ? -(zigzag >> 1n) - 1n : zigzag >> 1n);
    }
    case "fixed32":
      return reader.view.getUint32(reader.take(4), true);
    case "sfixed32":
      return reader.view.getInt32(reader.take(4), true);
    case "float":
      return reader.view.getFloat32(reader.take(4), true);
    case "fixed64":
      return compact(reader.view.getBigUint64(reader.take(8), true));
    case "sfixed64":
      return compact(reader.view.getBigInt64(reader.take(8), true));
    case "double":
      return reader.view.getFloat64(reader.take(8), true);
    default:
      throw new DecodeError(`unsupported scalar type ${type}`);
  }
}

function defaultValue(field) {
  const [, , type, kind, repeated] = field;
  if (repeated) return [];
  if (kind === "message") return null;
  if (kind === "enum") return 0;
  if (type === "string") return "";
  if (type === "bytes") return new Uint8Array(0);
  if (type === "bool") return false;
  return 0;
}

function readField(reader, field, wireType, target) {
  const [, name, type, kind, repeated] = field;
  const scalar = scalarType(type, kind);
  let value;
  if (kind === "message") {
    if (wireType !== LENGTH_DELIMITED) throw new DecodeError(`field ${name}: wrong wire type`);
    value = decodeMessage(type, reader.lengthDelimited());
  } else if (repeated && wireType === LENGTH_DELIMITED && WIRE_TYPES[scalar] !== LENGTH_DELIMITED) {
    const packed = new Reader(reader.lengthDelimited());
    while (!packed.atEnd()) target[name].push(readScalar(packed, scalar));
    return;
  } else {
    if (wireType !== WIRE_TYPES[scalar]) throw new DecodeError(`field ${name}: wrong wire type`);
    value = readScalar(reader, scalar);
  }
  if (repeated) target[name].push(value);
  else target[name] = value;
}

/** Decode `bytes`, a Uint8Array, as message `name`; throws DecodeError. */
export function decodeMessage(name, bytes) {
  const table = lookup(name);
  const result = {};
  for (const field of table.values()) result[field[1]] = defaultValue(field);
  const reader = new Reader(bytes);
  while (!reader.atEnd()) {
    const key = reader.varint();
    const number = Math.floor(Number(key) / 8);
    const wireType = Number(key) % 8;
    const field = table.get(number);
    if (field === undefined) reader.skip(wireType);
    else readField(reader, field, wireType, result);
  }
  return result;
}
