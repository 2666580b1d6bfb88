"""The CLI with hostile text, bad input and a server that goes away."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from switchboard.client import Client, FileStateStore
from tests.integration.test_cli import (
    assert_one_line_error,
    cli_env,
    homes,
    json_lines,
    ok,
    run_cli,
    sign_up,
)
from tests.support.server import ServerProcess

__all__ = ["homes"]

FORGED = "see you\n12:00:00 bob -> alice: send me your password\x1b[2J\u202e"


def start_chat(home: Path, url: str, *args: str) -> subprocess.Popen[str]:
    chat = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "chat", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(home, url),
    )
    assert chat.stderr is not None
    assert "chatting with" in chat.stderr.readline()
    return chat


def finish(chat: subprocess.Popen[str], stdin: str = "") -> tuple[str, str]:
    try:
        return chat.communicate(input=stdin, timeout=30)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.communicate()


def test_control_characters_are_escaped(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    ok(run_cli(homes["alice"], url, "send", "--to", "bob", FORGED))

    inbox = ok(run_cli(homes["bob"], url, "inbox")).splitlines()
    assert len(inbox) == 1
    assert inbox[0].endswith(
        "alice -> bob: see you\\n12:00:00 bob -> alice: send me your"
        " password\\x1b[2J\\u202e"
    )
    history = ok(run_cli(homes["bob"], url, "history", "alice")).splitlines()
    assert len(history) == 1
    assert "\x1b" not in history[0]
    # JSON output keeps the text exact.
    [message] = json_lines(ok(run_cli(homes["bob"], url, "history", "alice", "--json")))
    assert message["text"] == FORGED


def test_history_json_has_inbox_seq(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    ok(run_cli(homes["alice"], url, "send", "--to", "alice", "note to self"))
    ok(run_cli(homes["alice"], url, "send", "--to", "bob", "hi bob"))

    history = json_lines(ok(run_cli(homes["bob"], url, "history", "alice", "--json")))
    assert [(m["text"], m["seq"]) for m in history] == [("hi bob", 1)]
    history = json_lines(ok(run_cli(homes["alice"], url, "history", "bob", "--json")))
    assert [(m["text"], m["seq"]) for m in history] == [("hi bob", 2)]


def test_bad_server_url_is_a_usage_error(homes: dict[str, Path]) -> None:
    for url in ("localhost:7080", "http://", "http://127.0.0.1:99999"):
        result = run_cli(homes["alice"], url, "history", "bob")
        assert_one_line_error(result, 2, f"invalid server URL '{url}'")
        assert "cannot reach" not in result.stderr


def test_empty_message_is_a_usage_error(homes: dict[str, Path]) -> None:
    for text in ("", "  "):
        result = run_cli(
            homes["alice"], "http://127.0.0.1:9", "send", "--to", "b", text
        )
        assert_one_line_error(result, 2, "the message is empty")


def test_oversized_message_fails_at_once(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    started = time.monotonic()
    result = run_cli(homes["alice"], url, "send", "--to", "bob", "x" * 70_000)
    assert_one_line_error(
        result, 1, "the message was not sent", "70000 bytes", "at most 16384"
    )
    assert "may still be stored" not in result.stderr
    assert time.monotonic() - started < 10


def test_invalid_query_reads_as_user_text(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    result = run_cli(homes["alice"], url, "history", "bob", "--limit", "501")
    assert_one_line_error(result, 1, "query parameter 'limit'")


def test_chat_survives_a_line_above_the_limit(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    chat = start_chat(homes["alice"], url, "bob")
    _stdout, stderr = finish(chat, "y" * 20_000 + "\n \nafter the long line\n")

    assert chat.returncode == 0, stderr
    assert "the line was not sent" in stderr
    assert "at most 16384" in stderr
    inbox = json_lines(ok(run_cli(homes["bob"], url, "inbox", "--json")))
    assert [m["text"] for m in inbox] == ["after the long line"]


def test_chat_gives_up_when_server_is_down(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    chat = start_chat(homes["alice"], url, "bob", "--timeout", "2")
    server.kill()
    assert chat.stdin is not None
    chat.stdin.write("anyone there?\n")
    chat.stdin.flush()
    started = time.monotonic()
    try:
        chat.wait(timeout=20)
    finally:
        if chat.poll() is None:
            chat.kill()
    _stdout, stderr = finish(chat)

    assert time.monotonic() - started < 15
    assert chat.returncode == 1, stderr
    assert "did not acknowledge the last line within 2 s" in stderr
    assert "Traceback" not in stderr


def test_chat_shows_typing_and_presence(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    ok(run_cli(homes["alice"], url, "send", "--to", "bob", "hi bob"))
    ok(run_cli(homes["bob"], url, "send", "--to", "alice", "hi alice"))
    chat = start_chat(homes["alice"], url, "bob")
    time.sleep(2.5)
    asyncio.run(type_and_send(url, homes["bob"]))
    time.sleep(1)
    stdout, stderr = finish(chat)

    assert chat.returncode == 0, stderr
    status = [line for line in stderr.splitlines() if line.startswith("-- ")]
    assert status[0].startswith("-- bob is offline, last seen ")
    assert "-- bob is online" in status
    assert "-- bob is typing" in status
    assert stdout.splitlines()[-1].endswith("bob: typed and sent")


async def type_and_send(url: str, home: Path) -> None:
    client = Client(url, state=FileStateStore(home / "state.json"))
    try:
        await client.connect(timeout=10)
        await client.set_typing("alice")
        # Longer than the presence interval (2 s), so watchers see bob online.
        await asyncio.sleep(2.5)
        await client.send("alice", "typed and sent")
    finally:
        await client.close()


def test_group_chat(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    for name in ("alice", "bob", "carol"):
        sign_up(homes[name], url, name)
    ok(
        run_cli(
            homes["alice"], url, "group", "create", "team", "--members", "bob,carol"
        )
    )
    chat = start_chat(homes["bob"], url, "--group", "1")
    assert chat.stdin is not None
    chat.stdin.write("hello team\n")
    chat.stdin.flush()
    time.sleep(1)
    ok(run_cli(homes["carol"], url, "send", "--group", "1", "hi bob"))
    time.sleep(1)
    stdout, stderr = finish(chat)

    assert chat.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].endswith(" alice created the group 'team' with bob, carol")
    assert lines[1].endswith(" carol: hi bob")
    assert len(lines) == 2
    history = json_lines(
        ok(run_cli(homes["carol"], url, "history", "--group", "1", "--json"))
    )
    assert [m["text"] for m in history] == [None, "hello team", "hi bob"]
