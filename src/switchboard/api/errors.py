"""The HTTP API's error body, and the error statuses its OpenAPI document lists."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ERROR_RESPONSES", "ErrorDetail", "ErrorResponse", "error_responses"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, lower-case code, e.g. name_taken")
    message: str = Field(description="What went wrong and what to do, in English")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Invalid input"),
        (401, "Missing, unknown, expired or revoked token"),
        (403, "Not allowed for this user"),
        (404, "No such user, group, message or media"),
        (409, "Conflicts with the current state, e.g. a name taken"),
        (413, "Body too large"),
        (422, "Malformed request: a field missing or of the wrong type"),
        (429, "Rate limited; retry after the Retry-After header's seconds"),
    )
}
"""Error statuses the API may respond with, in its one error shape."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI entries for more error statuses, in the one error shape."""
    return {
        status: {"model": ErrorResponse, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
