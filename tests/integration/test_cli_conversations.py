"""The conversations, read, recall, edit and delete commands, as subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import (
    assert_one_line_error,
    json_lines,
    ok,
    run_cli,
    sign_up,
)
from tests.support.server import ServerProcess


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    return {name: tmp_path / f"home-{name}" for name in ("alice", "bob")}


def send(home: Path, url: str, to: str, text: str) -> int:
    [receipt] = json_lines(ok(run_cli(home, url, "send", "--to", to, text, "--json")))
    message_id: int = receipt["id"]
    return message_id


def test_conversation_commands(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    alice, bob = homes["alice"], homes["bob"]
    sign_up(alice, url, "alice")
    sign_up(bob, url, "bob")
    first = send(alice, url, "bob", "hi bob")
    second = send(alice, url, "bob", "second")

    # The list, as JSON and as text.
    [conversation] = json_lines(ok(run_cli(bob, url, "conversations", "--json")))
    assert conversation["name"] == "alice"
    assert conversation["unread"] == 2
    assert conversation["last"]["text"] == "second"
    assert conversation["last"]["id"] == second
    listed = run_cli(bob, url, "conversations")
    assert "alice  (2 unread)" in ok(listed)
    assert "alice: second" in listed.stdout
    assert "2 unread in all conversations" in listed.stderr

    # Reading, part way and then to the end.
    [partial] = json_lines(
        ok(run_cli(bob, url, "read", "alice", "--up-to", str(first), "--json"))
    )
    assert (partial["changed"], partial["unread"], partial["read_id"]) == (
        True,
        1,
        first,
    )
    assert ok(run_cli(bob, url, "read", "alice")).strip() == (
        f"read alice up to message {second}; 0 unread"
    )
    assert "nothing new to read in alice" in ok(run_cli(bob, url, "read", "alice"))

    # Edit and recall by the sender; the recipient's inbox shows both.
    assert ok(run_cli(alice, url, "edit", str(second), "second!")).strip() == (
        f"message {second} edited"
    )
    assert ok(run_cli(alice, url, "recall", str(first))).strip() == (
        f"message {first} recalled"
    )
    assert "was recalled before; nothing changed" in ok(
        run_cli(alice, url, "recall", str(first))
    )
    events = json_lines(ok(run_cli(bob, url, "inbox", "--json")))
    assert [e["event"] for e in events] == [
        "message",
        "message",
        "read",
        "read",
        "edited",
        "recalled",
    ]
    assert events[0]["text"] == ""
    assert events[1]["text"] == "second!"
    assert events[4]["text"] == "second!"
    assert events[5]["message_id"] == first
    text_events = ok(run_cli(alice, url, "inbox")).splitlines()
    assert text_events[-2].endswith(f"alice edited message {second}: second!")
    assert text_events[-1].endswith(f"alice recalled message {first}")

    # Delete for oneself: Bob's history loses it, Alice's keeps it.
    assert ok(run_cli(bob, url, "delete", str(second))).strip() == (
        f"message {second} deleted for you"
    )
    bob_history = json_lines(ok(run_cli(bob, url, "history", "alice", "--json")))
    assert [m["id"] for m in bob_history] == [first]
    alice_history = json_lines(ok(run_cli(alice, url, "history", "bob", "--json")))
    assert [m["id"] for m in alice_history] == [first, second]


def test_change_command_errors(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    alice, bob = homes["alice"], homes["bob"]
    sign_up(alice, url, "alice")
    sign_up(bob, url, "bob")
    sent = send(alice, url, "bob", "mine")

    assert_one_line_error(
        run_cli(bob, url, "recall", str(sent)), 1, "NOT_SENDER", "only the sender"
    )
    assert_one_line_error(
        run_cli(bob, url, "edit", str(sent), "yours"), 1, "NOT_SENDER"
    )
    assert_one_line_error(
        run_cli(alice, url, "delete", "987654"), 1, "MESSAGE_NOT_FOUND", "987654"
    )
    assert_one_line_error(run_cli(bob, url, "read"), 2, "give either NAME or --group")
    assert_one_line_error(
        run_cli(bob, url, "read", "alice", "--group", "3"), 2, "give either"
    )
    assert_one_line_error(
        run_cli(bob, url, "read", "--group", "3"), 1, "GROUP_NOT_FOUND"
    )
    assert_one_line_error(run_cli(bob, url, "read", "zed"), 1, "no user named 'zed'")
    not_a_number = run_cli(bob, url, "recall", "abc")
    assert not_a_number.returncode == 2
    assert "invalid value 'abc'" in not_a_number.stderr
