"""``switchboard verify chaos``: run the chaos check and print its verdict.

Exits with status 0 when the history has no violation and 1 when it has one
or more.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from switchboard.chaos.blackout import BlackoutOptions, measure_blackout
from switchboard.chaos.checker import Verdict, check
from switchboard.chaos.faults import FaultSettings
from switchboard.chaos.run import RunOptions, RunResult, run_chaos
from switchboard.cli.commands import CommandError, UsageError

__all__ = ["add_verify", "format_report", "report_dict"]

MAX_LISTED = 20
"""Violations printed in the text report; --json lists up to MAX_JSON_LISTED."""
MAX_JSON_LISTED = 1000

DEFAULT_FAULTS = FaultSettings(
    split=0.2, coalesce=0.2, jitter=0.005, reset=0.002, blackhole=0.001
)
"""Faults of a check run without fault options: every kind, often enough that
a run of a few thousand messages meets each of them several times."""


def add_verify(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``verify chaos`` to the ``switchboard`` command."""
    verify = subcommands.add_parser("verify", help="check the server's guarantees")
    checks = verify.add_subparsers(dest="check", required=True, metavar="CHECK")
    chaos = checks.add_parser(
        "chaos",
        help="chat through a fault-injecting proxy and check every delivery",
        description="Run SDK clients through a proxy that splits, joins, delays,"
        " resets and black-holes their TCP connections, then check that every"
        " acknowledged message reached every device of its sender and recipient"
        " exactly once and in order. Starts its own server on a temporary data"
        " directory unless --server is given. Exits with status 1 on any"
        " violation.",
    )
    _add_run_options(chaos)
    _add_fault_options(chaos, DEFAULT_FAULTS)
    chaos.set_defaults(handler=verify_chaos)

    blackout = checks.add_parser(
        "blackout",
        help="measure how long clients take to catch up after a network blackout",
        description="Connect SDK clients through a proxy, stop all their"
        " traffic for --seconds while another client sends them messages, and"
        " print how long each client takes, after the blackout, to hand out"
        " every message. Exits with status 1 if a client did not catch up or"
        " a delivery guarantee was broken.",
    )
    _add_blackout_options(blackout)
    _add_fault_options(blackout, FaultSettings())
    blackout.set_defaults(handler=verify_blackout)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", type=int, default=20, metavar="N", help="users (default: 20)"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=1,
        metavar="D",
        help="devices per user (default: 1)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=2000,
        metavar="M",
        help="messages in all (default: 2000)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of every fault (default: 0)",
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=0,
        metavar="K",
        help="SIGKILL and restart the embedded server K times (default: 0)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=8,
        metavar="W",
        help="sends in flight per device (default: 8)",
    )
    parser.add_argument(
        "--server",
        dest="chaos_server",
        default=None,
        metavar="URL",
        help="check the server at this base URL instead of an embedded one",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the embedded server's data and log in DIR (default: a"
        " temporary directory, removed afterwards)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=2,
        metavar="S",
        help="heartbeat interval of the embedded server and the clients, in"
        " seconds; keep it above 4 times the network's delay variation"
        " (default: 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="time the sends may take (default: 600)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="error",
        help="log messages to show on stderr (default: error)",
    )


def _add_blackout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", type=int, default=10, metavar="N", help="clients (default: 10)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="length of the blackout, in seconds (default: 30)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=10,
        metavar="M",
        help="messages sent to each client during the blackout (default: 10)",
    )
    parser.add_argument(
        "--refuse-new",
        action="store_true",
        help="reset connections opened during the blackout at once, so that"
        " clients back off (default: hold them until the blackout ends)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        metavar="S",
        help="connect the clients one after another over this many seconds, so"
        " that their heartbeats are out of phase (default: the server's"
        " heartbeat interval)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of every fault (default: 0)",
    )
    parser.add_argument(
        "--server",
        dest="chaos_server",
        default=None,
        metavar="URL",
        help="measure the server at this base URL instead of an embedded one",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="error",
        help="log messages to show on stderr (default: error)",
    )


def _add_fault_options(
    parser: argparse.ArgumentParser, defaults: FaultSettings
) -> None:
    faults = parser.add_argument_group(
        "faults", "probabilities apply to each chunk of bytes the proxy reads"
    )
    probabilities = {
        "split": "cut a chunk into several TCP segments",
        "coalesce": "join a chunk with the ones that follow it",
        "loss": "lose a chunk once and resend it after --retransmit-delay",
        "reset": "reset the connection",
        "blackhole": "stop forwarding without closing (a half-open connection)",
    }
    for name, text in probabilities.items():
        default = getattr(defaults, name)
        faults.add_argument(
            f"--{name}",
            type=float,
            default=default,
            metavar="P",
            help=f"probability to {text} (default: {default:g})",
        )
    for name, text in {
        "delay": "one-way latency added to each chunk",
        "jitter": "random extra latency per chunk, up to this",
        "retransmit-delay": "extra latency of a lost chunk",
    }.items():
        default = getattr(defaults, name.replace("-", "_"))
        faults.add_argument(
            f"--{name}",
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{text}, in seconds (default: {default:g})",
        )


def _faults(args: argparse.Namespace) -> FaultSettings:
    return FaultSettings(
        seed=args.seed,
        split=args.split,
        coalesce=args.coalesce,
        delay=args.delay,
        jitter=args.jitter,
        loss=args.loss,
        retransmit_delay=args.retransmit_delay,
        reset=args.reset,
        blackhole=args.blackhole,
    )


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        clients=args.clients,
        devices=args.devices,
        messages=args.messages,
        seed=args.seed,
        restarts=args.restarts,
        window=args.window,
        server_url=args.chaos_server,
        faults=_faults(args),
        timeout=args.timeout,
        data_dir=args.data_dir,
        heartbeat=args.heartbeat,
    )


async def verify_chaos(args: argparse.Namespace) -> int:
    """Run the check that ``args`` describe; return the exit status."""
    logging.getLogger("switchboard").setLevel(args.log_level.upper())
    options = _options(args)
    try:
        options.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = await run_chaos(options)
    except RuntimeError as exc:
        raise CommandError(f"the chaos check could not run: {exc}") from exc
    verdict = check(result.history)
    if args.json:
        print(json.dumps(report_dict(options, result, verdict), indent=2))
    else:
        print(format_report(options, result, verdict))
    return 0 if verdict.ok else 1


def report_dict(
    options: RunOptions, result: RunResult, verdict: Verdict
) -> dict[str, object]:
    """Return the report as JSON-ready data."""
    data = verdict.as_dict()
    data["violation_count"] = len(verdict.violations)
    data["violations"] = verdict.violations[:MAX_JSON_LISTED]
    return {
        "clients": options.clients,
        "devices": options.devices,
        "messages": options.messages,
        "seed": options.seed,
        "restarts": result.restarts,
        "heartbeat": options.heartbeat,
        "server": options.server_url or "embedded",
        "duration": round(result.duration, 2),
        "verdict": data,
        "faults": {**result.faults.as_dict(), "injected": result.faults.injected},
        "fault_settings": _settings_dict(options.faults),
    }


def _settings_dict(faults: FaultSettings) -> dict[str, float]:
    return {
        name: getattr(faults, name)
        for name in (
            "split",
            "coalesce",
            "delay",
            "jitter",
            "loss",
            "reset",
            "blackhole",
        )
    }


def format_report(options: RunOptions, result: RunResult, verdict: Verdict) -> str:
    """Return the report as lines of text for a terminal."""
    faults = result.faults
    lines = [
        f"chaos check: {options.clients} users x {options.devices} devices,"
        f" {options.messages} messages, seed {options.seed},"
        f" {result.restarts} restarts, server {options.server_url or 'embedded'}",
        f"sends:    {verdict.sent} sent, {verdict.acked} acked,"
        f" {verdict.failed} failed, {verdict.unresolved} unresolved",
        f"delivery: {verdict.delivered} of {verdict.expected} expected hand-outs;"
        f" lost {verdict.lost}, duplicated {verdict.duplicated},"
        f" reordered {verdict.reordered}, phantom {verdict.phantom}",
        f"faults:   {faults.injected} injected: {faults.splits} splits,"
        f" {faults.coalesced} coalesced, {faults.lost} lost chunks,"
        f" {faults.resets} resets, {faults.blackholes} black holes,"
        f" {faults.stalls} stalls; {faults.connections} connections,"
        f" {faults.refused} refused",
        f"time:     {result.duration:.1f} s",
    ]
    if verdict.ok:
        lines.append("OK: no violation")
    else:
        lines.append(f"FAILED: {len(verdict.violations)} violations")
        lines += [f"  {text}" for text in verdict.violations[:MAX_LISTED]]
        if len(verdict.violations) > MAX_LISTED:
            lines.append(f"  ... and {len(verdict.violations) - MAX_LISTED} more")
    return "\n".join(lines)


async def verify_blackout(args: argparse.Namespace) -> int:
    """Run the blackout measurement that ``args`` describe; return the status."""
    logging.getLogger("switchboard").setLevel(args.log_level.upper())
    options = BlackoutOptions(
        clients=args.clients,
        blackout=args.seconds,
        messages=args.messages,
        faults=_faults(args),
        server_url=args.chaos_server,
        spread=args.spread,
        refuse_new=args.refuse_new,
    )
    try:
        options.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        result = await measure_blackout(options)
    except RuntimeError as exc:
        raise CommandError(f"the blackout measurement could not run: {exc}") from exc
    verdict = check(result.history)
    summary = result.summary()
    caught_up = all(math.isfinite(t) for t in result.sync_times)
    if args.json:
        report = {
            "clients": options.clients,
            "blackout": options.blackout,
            "messages_per_client": options.messages,
            "heartbeat": result.heartbeat,
            "refuse_new": options.refuse_new,
            "sync_times": [round(t, 3) for t in result.sync_times],
            "sync_summary": {k: round(v, 3) for k, v in summary.items()},
            "verdict": verdict.as_dict(),
            "faults": {**result.faults.as_dict(), "injected": result.faults.injected},
            "fault_settings": _settings_dict(options.faults),
            "duration": round(result.duration, 2),
        }
        print(json.dumps(report, indent=2))
    else:
        print(
            f"blackout of {options.blackout:g} s, {options.clients} clients,"
            f" {options.messages} messages each, server heartbeat"
            f" {result.heartbeat} s\n"
            f"sync time after the blackout: min {summary['min']:.2f} s, median"
            f" {summary['median']:.2f} s, p90 {summary['p90']:.2f} s, max"
            f" {summary['max']:.2f} s\n"
            f"delivery: {verdict.delivered} of {verdict.expected} expected"
            f" hand-outs; lost {verdict.lost}, duplicated {verdict.duplicated},"
            f" reordered {verdict.reordered}"
        )
        for text in verdict.violations[:MAX_LISTED]:
            print(f"  {text}")
    return 0 if verdict.ok and caught_up else 1
