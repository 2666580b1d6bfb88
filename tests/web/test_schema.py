"""The .proto reader that the web codec generator uses."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from switchboard.protocol import pb
from switchboard.web.codegen import PROTO
from switchboard.web.schema import SCALAR_TYPES, Field, SchemaError, parse_proto

TYPE_NAMES = {
    getattr(FieldDescriptor, f"TYPE_{name.upper()}"): name for name in SCALAR_TYPES
}


def describe(field: FieldDescriptor) -> Field:
    """Return a field of the compiled Python codec in the reader's terms."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        kind, type_name = "message", field.message_type.name
    elif field.type == FieldDescriptor.TYPE_ENUM:
        kind, type_name = "enum", field.enum_type.name
    else:
        kind, type_name = "scalar", TYPE_NAMES[field.type]
    return Field(field.name, field.number, type_name, kind, field.is_repeated)


def test_schema_matches_compiled_codec() -> None:
    schema = parse_proto(PROTO.read_text())

    assert schema.package == pb.DESCRIPTOR.package
    compiled = pb.DESCRIPTOR.message_types_by_name
    assert sorted(schema.messages) == sorted(compiled)
    for name, message in schema.messages.items():
        expected = [describe(field) for field in compiled[name].fields]
        assert message.fields == expected, name
    for name, enum in schema.enums.items():
        values = {
            value.name: value.number
            for value in pb.DESCRIPTOR.enum_types_by_name[name].values
        }
        assert enum.values == values, name


def test_schema_resolves_nested_types() -> None:
    text = """
    syntax = "proto3";
    package demo.v1;
    message Outer {
      message Inner { sint64 delta = 1; }
      enum Kind { KIND_A = 0; KIND_B = 1 [deprecated = true]; }
      Inner inner = 1;
      repeated Kind kinds = 2;
      oneof choice { string text = 3; bytes data = 4; }
      optional double ratio = 5 [json_name = "r"];
      .demo.v1.Other other = 6;
      reserved 7 to 9;
    }
    message Other { Outer.Inner inner = 1; }
    """

    schema = parse_proto(text)

    outer = {field.name: field for field in schema.messages["Outer"].fields}
    assert outer["inner"] == Field("inner", 1, "Outer.Inner", "message", False)
    assert outer["kinds"] == Field("kinds", 2, "Outer.Kind", "enum", True)
    assert outer["text"].type == "string"
    assert outer["data"].number == 4
    assert outer["ratio"] == Field("ratio", 5, "double", "scalar", False)
    assert outer["other"].type == "Other"
    assert schema.messages["Other"].fields[0].type == "Outer.Inner"
    assert schema.enums["Outer.Kind"].values == {"KIND_A": 0, "KIND_B": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('syntax = "proto2";', "line 1: syntax 'proto2'"),
        ('import "other.proto";', "line 1: 'import' is not supported"),
        ("message A {\n map<string, int32> m = 1; }", "line 2: 'map' is not supported"),
        ("message A {\n Missing m = 1; }", "line 2: unknown type 'Missing'"),
        ("message A { int32 a = 1; int32 b = 1; }", "field numbers used twice: [1]"),
        ("message A { int32 a = 0; }", "invalid field number 0"),
        ("message A { int32 a = 19000; }", "invalid field number 19000"),
        ("message A { int32 a = x; }", "'x' is not an integer"),
        ("message A { int32 a = 1 }", "expected ';', found '}'"),
        ("message A { int32 a = 1;", "unexpected end of file"),
        ("message A { required int32 a = 1; }", "'required' is not supported"),
        ("service S {}", "'service' is not supported"),
        ("message A { int32 a = 1; } $", "unexpected character '$'"),
    ],
)
def test_schema_rejects_unsupported_input(text: str, message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        parse_proto(text)

    assert message in str(caught.value)
