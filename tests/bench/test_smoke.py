"""Short real runs of ``switchboard bench`` as subprocesses.

Each run starts its own embedded server, except the one that targets a
ServerProcess through --server. Together they take well under 30 seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess

RUN_TIMEOUT = 120


def bench(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """Run ``switchboard bench ARGS --json``; return the record and stderr."""
    out_dir = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "switchboard",
        "bench",
        *args,
        "--json",
        "--out",
        str(out_dir),
        "--report",
        str(tmp_path / "benchmarks.md"),
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record: dict[str, Any] = json.loads(result.stdout)
    return record, result.stderr


def test_wire_counts_protocol_bytes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    record, _ = bench(tmp_path, "wire")

    tcp = record["results"]["tcp"]
    for step in tcp["steps"] + record["results"]["ws"]["steps"]:
        assert step["kernel_agrees"] is True, step
    # One heartbeat byte each way, and the frames of docs/protocol.md's
    # example exchange: Send 13, SendAck 8, Message 17 (with its unread
    # count), Cursor 4.
    assert tcp["totals"]["heartbeat"] == {"sent": 1, "received": 1, "both": 2}
    assert tcp["totals"]["hello"]["both"] == 13 + 8 + 17 + 4
    assert record["results"]["ws"]["totals"]["hello"]["both"] > 42
    assert [check["met"] for check in record["checks"]].count(None) == 0
    assert (tmp_path / "out" / "wire.json").exists()
    assert (tmp_path / "out" / "wire-bytes.png").exists()
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| wire | heartbeat, each way | <= 2 bytes |" in page


def test_wire_external_server_without_matplotlib(tmp_path: Path) -> None:
    # One run checks both, because each run costs a few seconds.
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    path = os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        record, stderr = bench(
            tmp_path,
            "wire",
            "--transport",
            "tcp",
            "--server",
            server.base_url,
            "--server-pid",
            str(server.pid),
            env={"PYTHONPATH": path},
        )
    finally:
        server.terminate()

    assert record["target"]["embedded"] is False
    assert record["target"]["base_url"] == server.base_url
    # Tokens from POST /v1/sessions are as long as seeded ones.
    assert record["results"]["tcp"]["totals"]["hello"]["both"] == 42
    assert "pip install 'switchboard[bench]'" in stderr
    assert "pip install 'switchboard[bench]'" in record["chart_note"]
    assert record["charts"] == []


def test_direct_tiny_run(tmp_path: Path) -> None:
    record, _ = bench(
        tmp_path,
        "direct",
        "--pairs",
        "4",
        "--window",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--runs",
        "1",
        "--rate",
        "half,200",
    )

    (run,) = record["results"]["runs"]
    saturation = run["saturation"]
    assert saturation["delivered_per_second"] > 50
    assert saturation["messages"]["errors"] == 0
    assert saturation["all_drained"] is True
    assert saturation["server_cpu_us_per_message"] > 0
    assert saturation["generator_cpu_cores"] > 0
    assert run["half"]["latency"]["count"] > 0
    fixed = run["200"]
    # The generator keeps the schedule whatever the server does: 200 per
    # second over 0.2 s of warm-up and 1 s of measurement.
    assert 180 <= fixed["messages"]["sent"] <= 300
    assert fixed["delivered_per_second"] > 0
    assert fixed["latency"]["p99_ms"] > 0
    names = [check["name"] for check in record["checks"]]
    assert "p99 latency at half the saturation rate" in names
