"""Read the subset of the proto3 language that ``proto/switchboard.proto`` uses.

The web client's codec is generated from the schema without protoc, so that
regenerating it needs only Python. Supported: ``syntax``, ``package`` and
``option`` statements, messages (nested too) with scalar, enum and message
fields, ``repeated`` and ``optional`` labels, ``oneof`` groups, ``reserved``
ranges, and enums. Anything else (``import``, ``map<>``, services, groups,
extensions) raises :class:`SchemaError` naming the line, rather than being
skipped, so the generated codec never silently lacks a field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "SCALAR_TYPES",
    "EnumType",
    "Field",
    "MessageType",
    "Schema",
    "SchemaError",
    "parse_proto",
]

SCALAR_TYPES = frozenset(
    {
        "double",
        "float",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "bool",
        "string",
        "bytes",
    }
)


class SchemaError(ValueError):
    """The .proto text is invalid or uses a construct this reader lacks."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    number: int
    type: str
    """A scalar type name, or the full name of a message or enum (``Outer.Inner``)."""
    kind: str
    """``scalar``, ``enum`` or ``message``."""
    repeated: bool


@dataclass(slots=True)
class MessageType:
    name: str
    """Full name inside the package, with dots for nesting."""
    fields: list[Field] = field(default_factory=list)


@dataclass(slots=True)
class EnumType:
    name: str
    values: dict[str, int] = field(default_factory=dict)
    """Value names in declaration order."""


@dataclass(slots=True)
class Schema:
    package: str = ""
    messages: dict[str, MessageType] = field(default_factory=dict)
    enums: dict[str, EnumType] = field(default_factory=dict)


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>\.?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?))
  | (?P<symbol>[{}\[\]()<>=;,.:])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    line: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SchemaError(f"line {line}: unexpected character {text[position]!r}")
        if match.lastgroup not in ("space", "comment"):
            tokens.append(_Token(match.group(), line))
        line += match.group().count("\n")
        position = match.end()
    return tokens


@dataclass(frozen=True, slots=True)
class _RawField:
    name: str
    number: int
    type: str
    repeated: bool
    scope: str
    line: int


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.schema = Schema()
        self.raw_fields: dict[str, list[_RawField]] = {}

    # Token access.

    def peek(self) -> str:
        if self.position >= len(self.tokens):
            return ""
        return self.tokens[self.position].text

    def line(self) -> int:
        if not self.tokens:
            return 1
        return self.tokens[min(self.position, len(self.tokens) - 1)].line

    def take(self) -> str:
        if self.position >= len(self.tokens):
            raise SchemaError(f"line {self.line()}: unexpected end of file")
        token = self.tokens[self.position].text
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        line, token = self.line(), self.take()
        if token != text:
            raise SchemaError(f"line {line}: expected {text!r}, found {token!r}")

    def skip_statement(self) -> None:
        """Skip to the ``;`` that ends the statement, bracketed values included."""
        depth = 0
        while True:
            token = self.take()
            if token in ("[", "{", "("):
                depth += 1
            elif token in ("]", "}", ")"):
                depth -= 1
            elif token == ";" and depth == 0:
                return

    # The grammar.

    def parse_file(self) -> None:
        while self.peek():
            line, keyword = self.line(), self.take()
            if keyword == "syntax":
                self.parse_syntax(line)
            elif keyword == "package":
                self.schema.package = self.take()
                self.expect(";")
            elif keyword == "option":
                self.skip_statement()
            elif keyword == "message":
                self.parse_message("")
            elif keyword == "enum":
                self.parse_enum("")
            elif keyword != ";":
                raise SchemaError(f"line {line}: {keyword!r} is not supported here")

    def parse_syntax(self, line: int) -> None:
        self.expect("=")
        syntax = self.take().strip("\"'")
        if syntax != "proto3":
            raise SchemaError(f"line {line}: syntax {syntax!r}; only proto3 is read")
        self.expect(";")

    def parse_message(self, scope: str) -> None:
        name = _join(scope, self.take())
        self.schema.messages[name] = MessageType(name)
        self.raw_fields[name] = []
        self.expect("{")
        while self.peek() != "}":
            self.parse_member(name)
        self.expect("}")

    def parse_member(self, message: str) -> None:
        line, token = self.line(), self.peek()
        if token == "message":
            self.take()
            self.parse_message(message)
        elif token == "enum":
            self.take()
            self.parse_enum(message)
        elif token in ("option", "reserved"):
            self.skip_statement()
        elif token == "oneof":
            self.take()
            self.take()
            self.expect("{")
            while self.peek() != "}":
                self.parse_field(message, oneof=True)
            self.expect("}")
        elif token in ("map", "extensions", "extend", "group", "required"):
            raise SchemaError(f"line {line}: {token!r} is not supported")
        elif token == ";":
            self.take()
        else:
            self.parse_field(message, oneof=False)

    def parse_field(self, message: str, *, oneof: bool) -> None:
        line = self.line()
        label = self.peek()
        repeated = label == "repeated"
        if label in ("repeated", "optional") and not oneof:
            self.take()
        type_name, name = self.take(), self.take()
        self.expect("=")
        number = _field_number(self.take(), line)
        if self.peek() == "[":
            self.skip_statement()
        else:
            self.expect(";")
        field_ = _RawField(name, number, type_name, repeated, message, line)
        self.raw_fields[message].append(field_)

    def parse_enum(self, scope: str) -> None:
        enum = EnumType(_join(scope, self.take()))
        self.schema.enums[enum.name] = enum
        self.expect("{")
        while self.peek() != "}":
            line, token = self.line(), self.take()
            if token in ("option", "reserved"):
                self.skip_statement()
                continue
            if token == ";":
                continue
            self.expect("=")
            enum.values[token] = _integer(self.take(), line)
            if self.peek() == "[":
                self.skip_statement()
            else:
                self.expect(";")
        self.expect("}")

    # Names are resolved once every type is known, since fields may refer
    # to types declared further down.

    def resolve(self) -> None:
        for message, raw_fields in self.raw_fields.items():
            fields = self.schema.messages[message].fields
            for raw in raw_fields:
                type_name, kind = self.resolve_type(raw)
                fields.append(
                    Field(raw.name, raw.number, type_name, kind, raw.repeated)
                )
            _check_unique(message, fields)

    def resolve_type(self, raw: _RawField) -> tuple[str, str]:
        if raw.type in SCALAR_TYPES:
            return raw.type, "scalar"
        name = raw.type.lstrip(".")
        package = self.schema.package + "."
        if package != "." and name.startswith(package):
            name = name.removeprefix(package)
        # Look in the field's message, then outwards, as protoc does.
        scope = raw.scope
        while True:
            candidate = _join(scope, name)
            if candidate in self.schema.messages:
                return candidate, "message"
            if candidate in self.schema.enums:
                return candidate, "enum"
            if not scope:
                break
            scope = scope.rpartition(".")[0]
        raise SchemaError(f"line {raw.line}: unknown type {raw.type!r}")


def parse_proto(text: str) -> Schema:
    """Parse ``text``, a proto3 file, into its messages and enums.

    Raises SchemaError with the line number for invalid or unsupported input.
    """
    parser = _Parser(_tokenize(text))
    parser.parse_file()
    parser.resolve()
    return parser.schema


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _integer(text: str, line: int) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise SchemaError(f"line {line}: {text!r} is not an integer") from None


def _field_number(text: str, line: int) -> int:
    number = _integer(text, line)
    # Field numbers are 1 to 2**29 - 1 without the range protobuf reserves.
    if not 1 <= number < 2**29 or 19000 <= number <= 19999:
        raise SchemaError(f"line {line}: invalid field number {number}")
    return number


def _check_unique(message: str, fields: list[Field]) -> None:
    numbers = [item.number for item in fields]
    duplicates = sorted({number for number in numbers if numbers.count(number) > 1})
    if duplicates:
        raise SchemaError(f"message {message}: field numbers used twice: {duplicates}")
