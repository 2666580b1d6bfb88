"""Temporary entry point until the full CLI lands."""

from __future__ import annotations

import argparse
from pathlib import Path

from switchboard.config import Settings, parse_address


def main() -> None:
    parser = argparse.ArgumentParser(prog="switchboard")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--data-dir", type=Path, default=Path("switchboard-data"))
    serve.add_argument("--tcp", default="127.0.0.1:7070")
    serve.add_argument("--http", default="127.0.0.1:7080")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    settings.tcp_host, settings.tcp_port = parse_address(args.tcp, 7070)
    settings.http_host, settings.http_port = parse_address(args.http, 7080)
    from switchboard.server import serve as run

    run(settings)
