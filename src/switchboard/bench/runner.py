"""Run one scenario: prepare the server and clients, then write the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.bench.accounts import Credential, login_over_http, seed_store
from switchboard.bench.client import Endpoints
from switchboard.bench.procfs import (
    FileLimit,
    machine_info,
    raise_file_limit,
    read_host_cpu,
)
from switchboard.bench.report import ScenarioResult, write_outputs
from switchboard.bench.target import (
    BenchError,
    EmbeddedServer,
    Target,
    external_target,
)

__all__ = ["Bench", "run_scenario"]

logger = logging.getLogger("switchboard.bench")


@dataclass
class Bench:
    """Options, limits and helpers that the runner hands to a scenario."""

    args: argparse.Namespace
    file_limit: FileLimit
    workers_used: int = 0
    """Load-generator processes the scenario started, for the report."""

    @property
    def embedded(self) -> bool:
        return self.args.bench_server is None

    def server_env(self, env: dict[str, str]) -> dict[str, str]:
        """Merge a scenario's server settings with --server-env options."""
        merged = dict(env)
        for item in self.args.server_env:
            name, sep, value = item.partition("=")
            if not sep or not name.startswith("SWITCHBOARD_"):
                raise BenchError(
                    f"invalid --server-env {item!r}: expected SWITCHBOARD_NAME=VALUE"
                )
            merged[name] = value
        return merged

    @contextlib.contextmanager
    def target(
        self, users: int, env: dict[str, str]
    ) -> Iterator[tuple[Target, list[Credential]]]:
        """Start the server under test with ``users`` logged-in clients ready.

        An embedded server gets ``env`` and its accounts written before it
        starts. A --server URL gets new accounts over HTTP and ignores
        ``env``: that server keeps its own settings.
        """
        if not self.embedded:
            target = external_target(self.args.bench_server, self.args.server_pid)
            self.log(f"logging in {users} clients over HTTP; this takes a while")
            yield target, asyncio.run(login_over_http(target.base_url, users))
            return
        server = EmbeddedServer(self.server_env(env))
        try:
            credentials = asyncio.run(seed_store(server.data_dir, users))
            target = server.start()
            self.log(f"embedded server pid {target.pid} at {target.base_url}")
            yield target, credentials
        finally:
            status = server.stop()
            if status not in (0, None):
                logger.warning("embedded server exited with status %s", status)

    def log(self, message: str) -> None:
        logger.info("%s: %s", self.args.scenario, message)


def endpoints_of(target: Target) -> Endpoints:
    """Return the addresses the load generator connects to."""
    host, port = target.tcp_address
    return Endpoints(host, port, target.ws_url)


def run_scenario(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """Run the scenario in ``args``, write its outputs; return the exit status."""
    _configure_logging(args.quiet)
    bench = Bench(args, raise_file_limit())
    command = shlex.join(["switchboard", *(sys.argv[1:] if argv is None else argv)])
    started_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    started = time.monotonic()
    host_before = read_host_cpu()
    load_before = os.getloadavg()[0]
    module = importlib.import_module(f"switchboard.bench.{args.scenario}")
    scenario: Callable[[Bench], ScenarioResult] = module.run
    try:
        result = scenario(bench)
    except BenchError as exc:
        print(f"switchboard bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

    document: dict[str, Any] = {
        "scenario": args.scenario,
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "seconds": round(time.monotonic() - started, 1),
        "command": command,
        "machine": machine_info(),
        "host_load": _host_load(host_before, load_before),
        "target": result.target,
        "load_generator": {
            "workers": bench.workers_used,
            "file_limit": bench.file_limit.as_dict(),
        },
        "parameters": result.parameters,
        "results": result.results,
    }
    paths = write_outputs(document, result, args.out, args.report)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_text(result)
    bench.log("wrote " + ", ".join(str(path) for path in paths))
    return 0


def _host_load(host_before: tuple[int, int], load_before: float) -> dict[str, float]:
    """Describe how busy the whole host was during the run.

    Other programs on the host compete with the server and the load
    generator for CPU, and this shows how much.
    """
    busy_before, total_before = host_before
    busy_after, total_after = read_host_cpu()
    total = total_after - total_before
    busy = (busy_after - busy_before) / total if total else 0.0
    return {
        "cpu_busy_fraction": round(busy, 3),
        "load_average_1m_before": load_before,
        "load_average_1m_after": os.getloadavg()[0],
    }


def print_text(result: ScenarioResult) -> None:
    """Print the key figures, then each target with its verdict."""
    width = max(len(name) for name, _ in result.headline)
    for name, value in result.headline:
        print(f"{name:<{width}}  {value}")
    verdicts = {True: "met", False: "NOT MET", None: "not measured"}
    for check in result.checks:
        print(
            f"target {check.name}: {check.target}, measured {check.measured}:"
            f" {verdicts[check.met]}"
        )


def _configure_logging(quiet: bool) -> None:
    # Progress lines of the bench only; other libraries log warnings and up.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("switchboard bench: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
