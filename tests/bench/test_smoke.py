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


def test_idle_tiny_run(tmp_path: Path) -> None:
    record, _ = bench(tmp_path, "idle", "--connections", "10,20", "--settle", "0.2")

    for transport in ("tcp", "ws"):
        steps = record["results"][transport]["steps"]
        assert [step["connections"] for step in steps] == [10, 20]
        for step in steps:
            assert step["rss_bytes"] > 0
            assert step["rss_per_connection_bytes"] > 0
    names = [check["name"] for check in record["checks"]]
    assert names == [
        "server RSS per idle TCP connection, at 20",
        "server RSS per idle WS connection, at 20",
    ]


def test_heartbeat_tiny_run(tmp_path: Path) -> None:
    record, _ = bench(
        tmp_path,
        "heartbeat",
        "--connections",
        "20",
        "--intervals",
        "1",
        "--duration",
        "1",
        "--runs",
        "1",
    )

    results = record["results"]
    assert results["connections"] == 20
    (run,) = results["runs"]
    assert run["baseline"]["echoes"] == 0
    assert run["baseline"]["open_connections"] == 20
    # 20 clients each send one heartbeat a second for a second.
    assert run["1"]["echoes"] >= 10
    assert results["medians"]["1"]["heartbeats_per_second"] > 0


def test_fanout_tiny_run(tmp_path: Path) -> None:
    record, _ = bench(
        tmp_path, "fanout", "--sizes", "5,20", "--messages", "2", "--runs", "1"
    )

    modes = record["results"]["modes"]
    assert list(modes) == ["write", "read"]
    for mode in modes.values():
        medians = mode["medians"]
        assert [medians[size]["online"] for size in ("5", "20")] == [1, 2]
        for result in medians.values():
            assert result["server_cpu_us_per_online_delivery"] >= 0
            assert result["last_delivery_ms_median"] > 0
    names = [check["name"] for check in record["checks"]]
    assert names == [
        "fan-out on write: server CPU per recipient, group of 20",
        "fan-out on read: server CPU per online delivery, group of 20",
    ]
    threshold = record["results"]["targets"]["read"]["server_env"]
    assert threshold["SWITCHBOARD_LARGE_GROUP_THRESHOLD"] == "1"
    described = record["target"]["server_env"]["SWITCHBOARD_LARGE_GROUP_THRESHOLD"]
    assert described == "20 (write), 1 (read)"


def test_storm_tiny_run(tmp_path: Path) -> None:
    record, _ = bench(
        tmp_path,
        "storm",
        "--clients",
        "40",
        "--spread",
        "0.5",
        "--control-rate",
        "20",
        "--runs",
        "1",
    )

    (run,) = record["results"]["runs"]
    assert run["clients_back"] == 40
    assert run["gave_up"] == 0
    assert record["results"]["medians"]["all_back_s"] > 0
    assert run["control_before"]["count"] > 0
    names = [check["name"] for check in record["checks"]]
    assert "control pair p99 latency during the storm" in names
