"""User-facing text for request validation errors (HTTP 422).

FastAPI reports where a request failed validation as a location tuple such as
``("body", "members", 2)``. The API names the place the way a client author
sees it instead ("field 'members[2]'", "query parameter 'limit'") and never
repeats the rejected input, which may be a password.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["describe_problems"]


def describe_problems(errors: Iterable[Mapping[str, Any]]) -> str:
    """Return one sentence listing every problem, separated by semicolons."""
    problems = list(dict.fromkeys(_describe(error) for error in errors))
    return "invalid request: " + "; ".join(problems)


def _describe(error: Mapping[str, Any]) -> str:
    location = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    place = _place(location)
    if kind == "missing":
        return f"{place} is missing"
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if location == ("body",) and kind in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object"
    message = str(error.get("msg") or "is invalid")
    return f"{place}: {message[:1].lower()}{message[1:]}"


def _place(location: Sequence[Any]) -> str:
    if not location:
        return "the request"
    source, path = location[0], list(location[1:])
    if not path:
        return "the request body" if source == "body" else f"the {source}"
    name = _dotted(path)
    if source == "query":
        return f"query parameter '{name}'"
    if source == "path":
        return f"the {name.replace('_', ' ')} in the URL"
    if source == "header":
        return f"header '{name}'"
    return f"field '{name}'"


def _dotted(path: Sequence[Any]) -> str:
    """Return ``members[2].name`` for the path ``["members", 2, "name"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
