"""``switchboard group`` and group sends, as subprocesses against a real server."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import (
    assert_one_line_error,
    homes,
    json_lines,
    ok,
    run_cli,
    sign_up,
)
from tests.support.server import ServerProcess

__all__ = ["homes"]


def test_cli_group_commands(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    alice, bob, carol = homes["alice"], homes["bob"], homes["carol"]
    for name, home in (("alice", alice), ("bob", bob), ("carol", carol)):
        sign_up(home, url, name)

    created = ok(run_cli(alice, url, "group", "create", "friends", "--members", "bob"))
    assert created.strip() == "created group friends (id 1): alice (owner), bob"
    [group] = json_lines(ok(run_cli(alice, url, "group", "list", "--json")))
    assert (group["id"], group["name"]) == (1, "friends")
    added = json_lines(
        ok(
            run_cli(
                alice, url, "group", "add", "1", "carol", "--role", "admin", "--json"
            )
        )
    )
    assert [(m["name"], m["role"]) for m in added[0]["members"]] == [
        ("alice", "owner"),
        ("bob", "member"),
        ("carol", "admin"),
    ]
    members = ok(run_cli(bob, url, "group", "members", "1")).splitlines()
    assert members == ["alice owner", "bob member", "carol admin"]

    sent = json_lines(
        ok(
            run_cli(
                bob,
                url,
                "send",
                "--group",
                "1",
                "hi all",
                "--mention",
                "carol",
                "--json",
            )
        )
    )
    assert (sent[0]["group"], sent[0]["group_name"], sent[0]["to"]) == (
        1,
        "friends",
        None,
    )
    inbox = ok(run_cli(carol, url, "inbox")).splitlines()
    assert inbox[0].endswith("[friends] alice added carol as admin")
    assert inbox[1].endswith("bob -> [friends]: hi all")
    [message] = [
        m
        for m in json_lines(
            ok(run_cli(carol, url, "history", "--group", "1", "--json"))
        )
        if m["text"]
    ]
    assert message["mentions"] == [3]

    assert ok(run_cli(carol, url, "group", "rename", "1", "best friends")).startswith(
        "renamed group 1 to best friends"
    )
    ok(run_cli(alice, url, "group", "role", "1", "bob", "admin"))
    ok(run_cli(bob, url, "group", "leave", "1"))
    ok(run_cli(alice, url, "group", "remove", "1", "carol"))
    history = ok(run_cli(alice, url, "history", "--group", "1")).splitlines()
    assert [line.split("] ", 1)[1] for line in history if "] " in line][-4:] == [
        "carol renamed the group to 'best friends'",
        "alice made bob admin",
        "bob left the group",
        "alice removed carol",
    ]
    assert ok(run_cli(bob, url, "group", "list")) == ""


def test_cli_group_errors(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    alice, bob = homes["alice"], homes["bob"]
    sign_up(alice, url, "alice")
    sign_up(bob, url, "bob")
    ok(run_cli(alice, url, "group", "create", "mine"))

    result = run_cli(bob, url, "send", "--group", "1", "let me in")
    assert_one_line_error(result, 1, "not allowed", "not a member of group 1")
    result = run_cli(alice, url, "send", "--group", "7", "hello?")
    assert_one_line_error(result, 1, "no group with id 7", "group list")
    result = run_cli(alice, url, "group", "create", "x", "--members", "zed")
    assert_one_line_error(result, 1, "no user named 'zed'")
    result = run_cli(alice, url, "group", "leave", "1")
    assert_one_line_error(result, 1, "not allowed", "owner cannot leave")
    result = run_cli(alice, url, "send", "--group", "1", "--to", "bob", "hi")
    assert_one_line_error(result, 2, "either --to NAME or --group ID")
    result = run_cli(alice, url, "group", "members", "one")
    assert result.returncode == 2
    assert "invalid group id 'one'" in result.stderr
    result = run_cli(alice, url, "group", "create", "x", "--members", "bob,,carol")
    assert result.returncode == 2
    assert "separate names with single commas" in result.stderr
