"""Persistent client state: login token, device, inbox cursor, client ids.

A device must keep its cursor and its highest client message id across
restarts. The cursor lets it request only the messages it lacks. The client
id keeps a new message from reusing the id of a stored one, which the server
would take for a resend and answer with the old message's receipt.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ClientState", "FileStateStore", "MemoryStateStore", "StateStore"]


@dataclass(slots=True)
class ClientState:
    """The state one device keeps between runs."""

    token: str | None = None
    """Bearer token from the last login; None when logged out."""
    user_id: int = 0
    name: str = ""
    """Account name of the last login."""
    device: str = ""
    """Device id sent at login; kept across logouts."""
    platform: str = "cli"
    """Platform name sent at login: android, ios, web, desktop or cli."""
    cursor: int = 0
    """Highest inbox sequence handed to the application."""
    last_client_id: int = 0
    """Highest client message id used by this device."""
    timeline_cursors: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per large group (its id as a string, for JSON): the highest timeline
    sequence handed to the application."""

    def copy(self) -> ClientState:
        return dataclasses.replace(self, timeline_cursors=dict(self.timeline_cursors))


class StateStore(abc.ABC):
    """Loads and saves a :class:`ClientState`."""

    @abc.abstractmethod
    def load(self) -> ClientState:
        """Return the saved state, or a fresh one if nothing was saved."""

    @abc.abstractmethod
    def save(self, state: ClientState) -> None:
        """Replace the saved state with ``state``."""


class MemoryStateStore(StateStore):
    """State kept in memory only, for tests and short-lived clients."""

    def __init__(self, state: ClientState | None = None) -> None:
        self._state = (state or ClientState()).copy()

    def load(self) -> ClientState:
        return self._state.copy()

    def save(self, state: ClientState) -> None:
        self._state = state.copy()


class FileStateStore(StateStore):
    """State in a JSON file, replaced atomically on each save.

    A save writes a temporary file in the same directory, flushes it to disk
    and renames it over the old file, so a crash leaves either the old or the
    new state, never a torn file. The file contains the login token, so it is
    created readable by its owner only.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> ClientState:
        """Read the file; raise ValueError naming it when it does not parse."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ClientState()
        try:
            return _state_from_json(json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid client state file {self.path}: {exc}") from exc

    def save(self, state: ClientState) -> None:
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(dataclasses.asdict(state), indent=2, sort_keys=True)
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as temp:
                temp.write(data + "\n")
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise


def _state_from_json(data: Any) -> ClientState:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    state = ClientState()
    for field in dataclasses.fields(ClientState):
        if field.name not in data:
            continue
        value = data[field.name]
        default = getattr(state, field.name)
        if field.name == "token":
            if value is not None and not isinstance(value, str):
                raise ValueError("'token' must be a string or null")
        elif type(value) is not type(default):
            raise ValueError(
                f"{field.name!r} must be of type {type(default).__name__},"
                f" not {type(value).__name__}"
            )
        if isinstance(value, int) and value < 0:
            raise ValueError(f"{field.name!r} must be 0 or more, not {value}")
        if isinstance(value, dict):
            for key, seq in value.items():
                if not key.isdigit() or type(seq) is not int or seq < 0:
                    raise ValueError(
                        f"{field.name!r} must map group ids to sequences of 0"
                        f" or more, not {key!r}: {seq!r}"
                    )
        setattr(state, field.name, value)
    return state
