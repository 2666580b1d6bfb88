"""A short coverage-guided fuzz pass over the decoder and the state machine.

Each harness runs in its own process from the corpus in the repository;
inputs it finds are written to a temporary directory, so the run leaves the
tree unchanged. For a long run, pass the corpus directory first:
``python tests/fuzz/fuzz_decoder.py -max_total_time=600 tests/fuzz/corpus/decoder``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("target", ["decoder", "connection"])
def test_fuzz_pass_finds_no_crash(target: str, tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(HERE / f"fuzz_{target}.py"),
        "-runs=30000",
        "-max_len=512",
        "-seed=1",
        str(tmp_path),
        str(HERE / "corpus" / target),
    ]

    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done 30000 runs" in result.stderr
