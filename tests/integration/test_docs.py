"""The example program in docs/sdk.md runs against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.server import ServerProcess

SDK_DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_sdk_doc_example_runs(server: ServerProcess) -> None:
    match = re.search(r"```python\n(.*?)```", SDK_DOC.read_text(), re.DOTALL)
    assert match is not None
    code = match.group(1).replace("http://127.0.0.1:7080", server.base_url)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "stored as message 1 at sequence 1",
        "alice -> bob : hello, bob",
    ]
