"""The embedded server must run without the ``cluster`` extra installed."""

from __future__ import annotations

import subprocess
import sys

CLUSTER_MODULES = ("asyncpg", "redis", "nats")

PROBE = """
import sys
import switchboard.cli.main
import switchboard.server
loaded = sorted(
    name for name in sys.modules if name.split(".")[0] in {modules!r}
)
print(",".join(loaded))
"""


def test_embedded_server_imports_no_cluster_client() -> None:
    # A fresh interpreter, because this test process may have imported them.
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=set(CLUSTER_MODULES))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"
