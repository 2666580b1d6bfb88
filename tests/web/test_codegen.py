"""The generated web codec tables, static/proto.js, and the shipped assets."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from switchboard.protocol.frames import PAYLOAD_TYPES, FrameType
from switchboard.web import codegen

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_codec_is_up_to_date() -> None:
    shipped = codegen.OUTPUT.read_text(encoding="utf-8")

    assert shipped == codegen.generate(codegen.PROTO), (
        "src/switchboard/web/static/proto.js is out of date with"
        " proto/switchboard.proto; run python -m switchboard.web.codegen"
    )


def test_codec_lists_every_frame_type() -> None:
    text = codegen.OUTPUT.read_text(encoding="utf-8")

    for frame_type in FrameType:
        assert f"  {frame_type.name}: {frame_type.value},\n" in text
    for number, cls in PAYLOAD_TYPES.items():
        assert f'  {number}: "{cls.DESCRIPTOR.name}",\n' in text


def test_check_reports_stale_file(tmp_path: Path) -> None:
    output = tmp_path / "proto.js"
    output.write_text("// stale\n")

    stale = codegen.main(["--check", "--output", str(output)])
    written = codegen.main(["--output", str(output)])
    fresh = codegen.main(["--check", "--output", str(output)])

    assert stale == 1
    assert written == 0
    assert fresh == 0
    assert output.read_text() == codegen.OUTPUT.read_text()


def test_check_reports_missing_file(tmp_path: Path) -> None:
    assert codegen.main(["--check", "--output", str(tmp_path / "none.js")]) == 1


def test_schema_change_changes_codec(tmp_path: Path) -> None:
    proto = tmp_path / "changed.proto"
    original = codegen.PROTO.read_text()
    proto.write_text(
        original.replace(
            "uint32 limit = 2;", "uint32 limit = 2;\n  bool newest_first = 3;"
        )
    )

    changed = codegen.generate(proto)

    assert '[3, "newest_first", "bool", "scalar", false]' in changed
    assert changed != codegen.generate(codegen.PROTO)


def test_package_data_ships_every_asset() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["switchboard"]
    static = ROOT / "src" / "switchboard" / "web" / "static"

    assets = [
        path.relative_to(ROOT / "src" / "switchboard").as_posix()
        for path in static.iterdir()
    ]

    assert assets
    for asset in assets:
        assert any(fnmatch.fnmatch(asset, pattern) for pattern in patterns), asset
