"""Client state stores: JSON file and memory."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from switchboard.client.state import ClientState, FileStateStore, MemoryStateStore


def sample_state() -> ClientState:
    return ClientState(
        token="secret-token",
        user_id=3,
        name="ann",
        device="phone",
        platform="ios",
        cursor=17,
        last_client_id=9,
        timeline_cursors={"7": 42, "12": 1},
    )


def test_file_round_trip(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    store.save(sample_state())
    assert store.load() == sample_state()


def test_missing_file_loads_fresh_state(tmp_path: Path) -> None:
    assert FileStateStore(tmp_path / "absent.json").load() == ClientState()


def test_save_creates_directory(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "home" / "state.json")
    store.save(sample_state())
    assert (tmp_path / "home" / "state.json").exists()


def test_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    FileStateStore(path).save(sample_state())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_save_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    store.save(sample_state())
    newer = sample_state()
    newer.cursor = 18
    store.save(newer)
    assert store.load().cursor == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_failed_save_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStateStore(tmp_path / "state.json")
    store.save(sample_state())

    def fail_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    newer = sample_state()
    newer.cursor = 99
    with pytest.raises(OSError, match="disk full"):
        store.save(newer)
    monkeypatch.undo()
    assert store.load().cursor == 17
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"cursor": 4, "future_field": True}))
    assert FileStateStore(path).load() == ClientState(cursor=4)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "invalid client state file"),
        ("[]", "expected a JSON object"),
        ('{"cursor": "4"}', "'cursor' must be of type int"),
        ('{"cursor": -1}', "'cursor' must be 0 or more"),
        ('{"token": 5}', "'token' must be a string or null"),
        ('{"timeline_cursors": {"x": 1}}', "'timeline_cursors' must map group ids"),
        ('{"timeline_cursors": {"7": -1}}', "'timeline_cursors' must map group ids"),
        ('{"timeline_cursors": {"7": "1"}}', "'timeline_cursors' must map group ids"),
    ],
)
def test_invalid_file_raises(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        FileStateStore(path).load()
    assert str(path) in str(info.value)


def test_memory_store_copies() -> None:
    state = sample_state()
    store = MemoryStateStore(state)
    state.cursor = 100
    loaded = store.load()
    assert loaded.cursor == 17
    loaded.cursor = 50
    assert store.load().cursor == 17
    store.save(loaded)
    assert store.load().cursor == 50


def test_memory_store_copies_timeline_cursors() -> None:
    store = MemoryStateStore(sample_state())

    loaded = store.load()
    loaded.timeline_cursors["7"] = 99

    assert store.load().timeline_cursors == {"7": 42, "12": 1}
