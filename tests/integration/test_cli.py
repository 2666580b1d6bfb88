"""The ``switchboard`` command end to end, as subprocesses against a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import password_of
from tests.support.server import ServerProcess, free_port

Run = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(home: Path, server_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SWITCHBOARD_HOME": str(home),
        "SWITCHBOARD_SERVER": server_url,
    }
    env.pop("SWITCHBOARD_LOG_LEVEL", None)
    return env


def run_cli(
    home: Path, server_url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(home, server_url),
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, *fragments: str
) -> None:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("switchboard: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    return {name: tmp_path / f"home-{name}" for name in ("alice", "bob", "carol")}


def sign_up(home: Path, url: str, name: str) -> None:
    password = password_of(name) + "\n"
    ok(
        run_cli(
            home, url, "account", "create", name, "--password-stdin", stdin=password
        )
    )
    ok(run_cli(home, url, "login", name, "--password-stdin", stdin=password))


def test_cli_end_to_end(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    alice, bob = homes["alice"], homes["bob"]
    created = ok(
        run_cli(
            alice,
            url,
            "account",
            "create",
            "alice",
            "--password-stdin",
            stdin=password_of("alice") + "\n",
        )
    )
    assert created.startswith("created account alice")
    login = ok(
        run_cli(
            alice, url, "login", "alice", "--password-stdin", stdin=password_of("alice")
        )
    )
    assert "logged in as alice" in login
    device = json.loads((alice / "state.json").read_text())["device"]
    assert device.startswith("cli-")
    sign_up(bob, url, "bob")

    receipt = json_lines(
        ok(run_cli(alice, url, "send", "--to", "bob", "hi bob", "--json"))
    )
    assert receipt[0]["to"] == "bob"
    bob_inbox = json_lines(ok(run_cli(bob, url, "inbox", "--json")))
    assert len(bob_inbox) == 1
    message = bob_inbox[0]
    assert message["from"] == "alice"
    assert message["to"] == "bob"
    assert message["text"] == "hi bob"
    assert message["id"] == receipt[0]["id"]
    assert message["seq"] == 1
    assert isinstance(message["sent_at"], int)
    # The cursor advanced: nothing new the second time.
    assert json_lines(ok(run_cli(bob, url, "inbox", "--json"))) == []

    ok(run_cli(bob, url, "send", "--to", "alice", "hello alice", "--transport", "ws"))
    alice_inbox = json_lines(
        ok(run_cli(alice, url, "inbox", "--json", "--transport", "ws"))
    )
    assert [(m["from"], m["text"], m["outgoing"]) for m in alice_inbox] == [
        ("alice", "hi bob", True),
        ("bob", "hello alice", False),
    ]

    history = json_lines(ok(run_cli(alice, url, "history", "bob", "--json")))
    assert [(m["from"], m["to"], m["text"]) for m in history] == [
        ("alice", "bob", "hi bob"),
        ("bob", "alice", "hello alice"),
    ]
    text_history = ok(run_cli(bob, url, "history", "alice")).splitlines()
    assert text_history[0].endswith("alice -> bob: hi bob")
    assert text_history[1].endswith("bob -> alice: hello alice")

    assert "logged out alice" in ok(run_cli(alice, url, "logout"))
    assert_one_line_error(
        run_cli(alice, url, "send", "--to", "bob", "after logout"), 1, "not logged in"
    )
    # A second login on the same home keeps the device id.
    ok(
        run_cli(
            alice, url, "login", "alice", "--password-stdin", stdin=password_of("alice")
        )
    )
    assert json.loads((alice / "state.json").read_text())["device"] == device


def test_cli_inbox_wait_prints_new_messages(
    server: ServerProcess, homes: dict[str, Path]
) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "inbox", "--json", "--wait", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(homes["bob"], url),
    )
    try:
        time.sleep(2)
        ok(run_cli(homes["alice"], url, "send", "--to", "bob", "while waiting"))
        stdout, stderr = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, stderr
    assert [m["text"] for m in json_lines(stdout)] == ["while waiting"]


def test_cli_chat(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    sign_up(homes["bob"], url, "bob")
    chat = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "chat", "bob"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(homes["alice"], url),
    )
    try:
        assert chat.stdin is not None
        assert chat.stderr is not None
        assert "chatting with bob" in chat.stderr.readline()
        chat.stdin.write("hello from the chat\n")
        chat.stdin.flush()
        time.sleep(1)
        bob_inbox = json_lines(ok(run_cli(homes["bob"], url, "inbox", "--json")))
        assert [m["text"] for m in bob_inbox] == ["hello from the chat"]
        ok(run_cli(homes["bob"], url, "send", "--to", "alice", "reply to the chat"))
        time.sleep(1)
        stdout, stderr = chat.communicate(input="", timeout=30)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.communicate()
    assert chat.returncode == 0, stderr
    lines = stdout.splitlines()
    # The typed line is not echoed back; the reply is printed once.
    assert len(lines) == 1, stdout
    assert lines[0].endswith("bob: reply to the chat")


def test_cli_wrong_password(server: ServerProcess, homes: dict[str, Path]) -> None:
    sign_up(homes["alice"], server.base_url, "alice")
    result = run_cli(
        homes["alice"],
        server.base_url,
        "login",
        "alice",
        "--password-stdin",
        stdin="not-the-password\n",
    )
    assert_one_line_error(result, 1, "'alice'", "wrong name or password")


def test_cli_unknown_recipient(server: ServerProcess, homes: dict[str, Path]) -> None:
    sign_up(homes["alice"], server.base_url, "alice")
    result = run_cli(homes["alice"], server.base_url, "send", "--to", "nobody", "hi")
    assert_one_line_error(result, 1, "no user named 'nobody'", "check the name")
    result = run_cli(homes["alice"], server.base_url, "history", "nobody")
    assert_one_line_error(result, 1, "no user named 'nobody'")


def test_cli_not_logged_in(server: ServerProcess, homes: dict[str, Path]) -> None:
    for command in (["send", "--to", "bob", "hi"], ["inbox"], ["history", "bob"]):
        result = run_cli(homes["carol"], server.base_url, *command)
        assert_one_line_error(result, 1, "not logged in", "switchboard login")
    result = run_cli(homes["carol"], server.base_url, "logout")
    assert_one_line_error(result, 1, "not logged in")


def test_cli_name_taken(server: ServerProcess, homes: dict[str, Path]) -> None:
    sign_up(homes["alice"], server.base_url, "alice")
    result = run_cli(
        homes["bob"],
        server.base_url,
        "account",
        "create",
        "alice",
        "--password-stdin",
        stdin="another-password\n",
    )
    assert_one_line_error(result, 1, "'alice' is taken")


def test_cli_server_unreachable(homes: dict[str, Path]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        homes["alice"],
        url,
        "account",
        "create",
        "alice",
        "--password-stdin",
        stdin="password-1\n",
    )
    assert_one_line_error(result, 1, "cannot reach the server", url, "--server")


def test_cli_stale_token(server: ServerProcess, homes: dict[str, Path]) -> None:
    url = server.base_url
    sign_up(homes["alice"], url, "alice")
    state_path = homes["alice"] / "state.json"
    state = json.loads(state_path.read_text())
    state["token"] = "not-a-valid-token"
    state_path.write_text(json.dumps(state))
    result = run_cli(homes["alice"], url, "inbox")
    assert_one_line_error(result, 1, "rejected the stored token", "switchboard login")


@pytest.mark.parametrize(
    "args",
    [
        ["send", "hi"],
        ["inbox", "--wait", "-1"],
        ["history", "bob", "--limit", "0"],
        ["serve", "--tcp", "127.0.0.1:notaport"],
        ["nonsense"],
    ],
)
def test_cli_usage_errors(homes: dict[str, Path], args: list[str]) -> None:
    result = run_cli(homes["alice"], "http://127.0.0.1:9", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "error:" in result.stderr.strip().splitlines()[-1]


def test_cli_password_needs_stdin_flag(homes: dict[str, Path]) -> None:
    result = run_cli(homes["alice"], "http://127.0.0.1:9", "login", "alice", stdin="")
    assert_one_line_error(result, 2, "--password-stdin")


@pytest.mark.parametrize("option", ["--tcp", "--http"])
def test_serve_on_a_port_in_use_fails_cleanly(
    homes: dict[str, Path], tmp_path: Path, option: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        other = "--http" if option == "--tcp" else "--tcp"
        result = run_cli(
            homes["alice"],
            "http://127.0.0.1:9",
            *("serve", "--data-dir", str(tmp_path / "data")),
            *(option, address, other, "127.0.0.1:0"),
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert " serving " not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"switchboard: error: cannot run the server: cannot listen on {address}:"
        " Address already in use"
    )


def test_serve_rejects_file_as_data_dir(homes: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    result = run_cli(
        homes["alice"], "http://127.0.0.1:9", "serve", "--data-dir", str(data)
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"switchboard: error: the data directory {data} is a file")
