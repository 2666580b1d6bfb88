"""Validation errors name the request's fields, not FastAPI's locations."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.api.validation import describe_problems


def problem(kind: str, *location: Any, msg: str = "") -> dict[str, Any]:
    return {"type": kind, "loc": location, "msg": msg, "input": "s3cret-password"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (problem("missing", "body", "password"), "field 'password' is missing"),
        (
            problem("string_type", "body", "members", 2, msg="Input should be a str"),
            "field 'members[2]': input should be a str",
        ),
        (
            problem("less_than_equal", "query", "limit", msg="Input should be <= 500"),
            "query parameter 'limit': input should be <= 500",
        ),
        (
            problem("int_parsing", "path", "group_id", msg="Input should be an int"),
            "the group id in the URL: input should be an int",
        ),
        (problem("json_invalid", "body", 7), "the request body is not valid JSON"),
        (
            problem("model_attributes_type", "body"),
            "the request body must be a JSON object",
        ),
        (problem("missing", "body"), "the request body is missing"),
    ],
)
def test_problem_text(error: dict[str, Any], expected: str) -> None:
    assert describe_problems([error]) == f"invalid request: {expected}"


def test_input_values_are_not_repeated() -> None:
    text = describe_problems([problem("string_too_short", "body", "password")])
    assert "s3cret" not in text


def test_problems_joined_once_each() -> None:
    errors = [problem("missing", "body", "name"), problem("missing", "body", "name")]
    errors.append(problem("missing", "body", "password"))
    assert describe_problems(errors) == (
        "invalid request: field 'name' is missing; field 'password' is missing"
    )
