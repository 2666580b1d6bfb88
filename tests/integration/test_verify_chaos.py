"""``switchboard verify chaos`` end to end, with its own embedded server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def verify(*options: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_check("chaos", *options, cwd=cwd)


def verify_blackout(*options: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_check("blackout", *options, cwd=cwd)


def run_check(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard", "verify", *arguments],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        check=False,
    )


def test_small_run_with_restart_passes(tmp_path: Path) -> None:
    result = verify(
        "--clients=8",
        "--devices=2",
        "--messages=800",
        "--seed=3",
        "--restarts=1",
        "--reset=0.01",
        "--blackhole=0.005",
        "--json",
        "--data-dir",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    verdict = report["verdict"]
    assert verdict["ok"] is True
    assert verdict["sent"] == 800
    assert verdict["acked"] == 800
    assert verdict["expected"] == 800 * 4
    assert verdict["delivered"] == 800 * 4
    assert verdict["lost"] == 0
    assert verdict["duplicated"] == 0
    assert verdict["reordered"] == 0
    assert report["restarts"] == 1
    assert report["faults"]["splits"] > 0
    assert report["faults"]["coalesced"] > 0
    log = (tmp_path / "run" / "server.log").read_text()
    assert log.count("opened SQLite store") == 2


def test_unfinished_run_fails(tmp_path: Path) -> None:
    result = verify(
        "--clients=2", "--messages=50", "--timeout=0.001", "--reset=0", cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not finish within 0.001 s" in result.stdout
    assert "FAILED" in result.stdout


def test_bad_option_is_usage_error(tmp_path: Path) -> None:
    result = verify("--clients=1", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid clients=1: use 2 or more" in result.stderr


def test_short_blackout_catches_up(tmp_path: Path) -> None:
    result = verify_blackout(
        "--clients=2",
        "--seconds=2",
        "--messages=3",
        "--spread=0",
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert len(report["sync_times"]) == 2
    assert report["sync_summary"]["max"] < 30
    assert report["verdict"]["ok"] is True
    assert report["verdict"]["expected"] == 2 * 3 * 2
    assert report["faults"]["stalls"] == 1
