"""Generate the web client's codec tables, ``static/proto.js``.

Usage: ``python -m switchboard.web.codegen [--check] [--proto PATH] [--output PATH]``.

The tables come from two sources: the messages and enums of
``proto/switchboard.proto``, and the frame type of each payload message from
:mod:`switchboard.protocol.frames`, which the schema cannot express. The
hand-written ``static/wire.js`` encodes and decodes messages from these
tables. ``--check`` exits with status 1, writing nothing, when the shipped
file differs from what the sources produce.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from switchboard.protocol.frames import PAYLOAD_TYPES, FrameType
from switchboard.web.schema import Schema, parse_proto

__all__ = ["OUTPUT", "PROTO", "main", "render"]

PROTO = Path(__file__).resolve().parents[3] / "proto" / "switchboard.proto"
"""The schema in a source checkout; installed packages do not contain it."""

OUTPUT = Path(__file__).resolve().parent / "static" / "proto.js"

_HEADER = """\
// Generated from proto/switchboard.proto and switchboard.protocol.frames by
// `python -m switchboard.web.codegen`. Do not edit: change the sources and
// regenerate. tests/web/test_codegen.py fails while this file is out of date.
"""


def render(schema: Schema, frame_payloads: dict[int, str]) -> str:
    """Return the text of proto.js for ``schema`` and the frame types.

    ``frame_payloads`` maps each frame type byte to its payload message name.
    """
    parts = [
        _HEADER,
        f"export const PACKAGE = {json.dumps(schema.package)};\n",
        _render_enums(schema),
        _render_messages(schema),
        _render_frames(frame_payloads),
    ]
    return "\n".join(parts)


def _render_enums(schema: Schema) -> str:
    lines = ["/** Enums: each value's name to its number. */"]
    lines.append("export const ENUMS = Object.freeze({")
    for enum in schema.enums.values():
        lines.append(f"  {json.dumps(enum.name)}: Object.freeze({{")
        for name, number in enum.values.items():
            lines.append(f"    {name}: {number},")
        lines.append("  }),")
    lines.append("});\n")
    return "\n".join(lines)


def _render_messages(schema: Schema) -> str:
    lines = [
        "/**",
        " * Messages: each field is [number, name, type, kind, repeated], where",
        ' * kind is "scalar", "enum" or "message", and type is the scalar type or',
        " * the full name of the enum or message. Fields are in number order.",
        " */",
        "export const MESSAGES = Object.freeze({",
    ]
    for message in schema.messages.values():
        lines.append(f"  {json.dumps(message.name)}: [")
        for item in sorted(message.fields, key=lambda item: item.number):
            values = [item.number, item.name, item.type, item.kind, item.repeated]
            lines.append(f"    {json.dumps(values)},")
        lines.append("  ],")
    lines.append("});\n")
    return "\n".join(lines)


def _render_frames(frame_payloads: dict[int, str]) -> str:
    lines = ['/** Frame type bytes (docs/protocol.md, "Frame types"). */']
    lines.append("export const FrameType = Object.freeze({")
    for frame_type in FrameType:
        lines.append(f"  {frame_type.name}: {frame_type.value},")
    lines.append("});\n")
    lines.append("/** The payload message of each frame type but the heartbeat. */")
    lines.append("export const PAYLOAD_TYPES = Object.freeze({")
    for number, name in sorted(frame_payloads.items()):
        lines.append(f"  {number}: {json.dumps(name)},")
    lines.append("});\n")
    return "\n".join(lines)


def frame_payloads() -> dict[int, str]:
    """Return each frame type's payload message name, from the Python codec."""
    return {int(number): cls.DESCRIPTOR.name for number, cls in PAYLOAD_TYPES.items()}


def generate(proto: Path) -> str:
    """Return proto.js as generated from the schema file ``proto``."""
    return render(parse_proto(proto.read_text(encoding="utf-8")), frame_payloads())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto", type=Path, default=PROTO, help="schema file")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="file to write")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the output file is out of date",
    )
    args = parser.parse_args(argv)

    text = generate(args.proto)
    if args.check:
        current = (
            args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        )
        if current != text:
            print(f"{args.output} is out of date; run {parser.prog}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
