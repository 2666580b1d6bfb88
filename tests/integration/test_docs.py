"""The example programs in docs/sdk.md run against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.server import ServerProcess

SDK_DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def run_example(index: int, server: ServerProcess) -> subprocess.CompletedProcess[str]:
    """Run the ``index``-th Python block of docs/sdk.md against ``server``."""
    blocks = re.findall(r"```python\n(.*?)```", SDK_DOC.read_text(), re.DOTALL)
    code = blocks[index].replace("http://127.0.0.1:7080", server.base_url)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sdk_doc_example_runs(server: ServerProcess) -> None:
    result = run_example(0, server)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stored as message 1 at sequence 1",
        "alice -> bob : hello, bob",
    ]


def test_sdk_doc_conversations_example_runs(server: ServerProcess) -> None:
    result = run_example(1, server)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "alice 2 unread",
        "after reading: 0 unread",
        "recalled message True",
    ]
