"""The report page: generated block, targets table and sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.bench.charts import Chart, Series
from switchboard.bench.report import (
    REPORT_BEGIN,
    REPORT_END,
    Check,
    ScenarioResult,
    update_report,
    write_outputs,
)


def document(scenario: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "started_at": "2026-12-04T12:00:00Z",
        "seconds": 12.3,
        "command": f"switchboard bench {scenario}",
        "machine": {
            "nproc": 2,
            "cpu_model": "Example CPU",
            "memory_bytes": 24 * 2**30,
            "kernel": "6.1",
            "python_implementation": "CPython",
            "python": "3.11.7",
            "uvloop": "0.23.0",
        },
        "target": {"embedded": False, "base_url": "http://127.0.0.1:7080"},
        "load_generator": {
            "workers": 2,
            "file_limit": {"before": 1024, "after": 20000, "hard": 20000},
        },
        "headline": [["figure one", "1 unit"]],
        "checks": checks,
        "tables": ["| a | b |\n|---|---|\n| 1 | 2 |"],
        "charts": [{"file": f"{scenario}-bytes.png", "title": "Bytes"}],
        "chart_note": "",
    }


def write(out_dir: Path, item: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{item['scenario']}.json").write_text(json.dumps(item))


def test_report_block_replaced_text_kept(tmp_path: Path) -> None:
    out_dir = tmp_path / "docs" / "benchmarks"
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir(parents=True)
    page.write_text(
        f"# Benchmarks\n\nintro\n\n{REPORT_BEGIN}\nold\n{REPORT_END}\n\nend\n"
    )
    write(out_dir, document("wire", []))

    update_report(page, out_dir)

    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n")
    assert text.endswith(f"{REPORT_END}\n\nend\n")
    assert "old" not in text
    assert "### `wire`" in text
    assert "](benchmarks/wire-bytes.png)" in text


def test_report_created_when_missing(tmp_path: Path) -> None:
    page = tmp_path / "report.md"
    update_report(page, tmp_path / "empty")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "No benchmark has run yet." in text
    assert text.count(REPORT_BEGIN) == 1


def test_report_orders_scenarios_and_verdicts(tmp_path: Path) -> None:
    checks = [
        {"name": "small", "target": "<= 2", "measured": "1", "met": True},
        {"name": "large", "target": "<= 2", "measured": "3", "met": False},
        {"name": "unknown", "target": "<= 2", "measured": "-", "met": None},
    ]
    write(tmp_path, document("direct", checks))
    write(tmp_path, document("wire", []))
    page = tmp_path / "page.md"

    update_report(page, tmp_path)

    text = page.read_text()
    assert text.index("### `wire`") < text.index("### `direct`")
    assert "| direct | small | <= 2 | 1 | yes |" in text
    assert "| direct | large | <= 2 | 3 | **no** |" in text
    assert "| direct | unknown | <= 2 | - | not measured |" in text
    assert "1 of 3 targets met." in text
    assert "](wire-bytes.png)" in text


def test_report_skips_unreadable_record(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    write(tmp_path, document("wire", []))
    page = tmp_path / "page.md"
    update_report(page, tmp_path)
    assert "### `wire`" in page.read_text()


def test_write_outputs_record_and_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    item = document("wire", [])
    result = ScenarioResult(
        target=item["target"],
        parameters={},
        results={"bytes": 3},
        headline=[("bytes", "3")],
        checks=[Check("bytes", "<= 4", "3", True)],
        charts=[Chart("bytes", "Bytes", "step", "bytes", [Series("tcp", ["a"], [3])])],
    )

    paths = write_outputs(item, result, tmp_path / "out", tmp_path / "page.md")

    record = json.loads((tmp_path / "out" / "wire.json").read_text())
    assert record["checks"] == [
        {"name": "bytes", "target": "<= 4", "measured": "3", "met": True}
    ]
    assert record["charts"] == [{"file": "wire-bytes.png", "title": "Bytes"}]
    png = tmp_path / "out" / "wire-bytes.png"
    assert png in paths
    assert png.read_bytes().startswith(b"\x89PNG")
