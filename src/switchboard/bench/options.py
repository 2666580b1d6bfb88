"""Command-line options of ``switchboard bench``, built with argparse alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

__all__ = [
    "DEFAULT_OUT",
    "DEFAULT_REPORT",
    "SCENARIOS",
    "add_parser",
    "parse_counts",
    "parse_fanout_modes",
    "parse_numbers",
    "parse_rates",
    "parse_transports",
]

DEFAULT_OUT = Path("docs/benchmarks")
DEFAULT_REPORT = Path("docs/benchmarks.md")
SCENARIOS = ("wire", "idle", "direct", "storm", "heartbeat", "fanout")
TRANSPORTS = ("tcp", "ws")
FANOUT_MODES = ("write", "read")

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def add_parser(subcommands: Subcommands) -> argparse.ArgumentParser:
    """Register ``bench`` and one sub-command per scenario on ``subcommands``."""
    bench = subcommands.add_parser(
        "bench",
        help="measure a server: wire bytes, memory, throughput, latency",
        description="Run a benchmark scenario against a server that the bench"
        " starts on free loopback ports (default) or against --server URL."
        " Each run writes SCENARIO.json and PNG charts under --out and updates"
        " the report page.",
    )
    scenarios = bench.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    # Each scenario gets its own copy of the common options, so that no
    # scenario can change a default that another one reads.
    for add in (_add_wire, _add_direct, _add_idle, _add_heartbeat, _add_fanout):
        add(scenarios)
    _add_storm(scenarios)
    return bench


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("server under test")
    target.add_argument(
        "--server",
        dest="bench_server",
        metavar="URL",
        default=None,
        help="base URL of a running server's HTTP API (default: start an"
        " embedded 'switchboard serve' on free ports of 127.0.0.1)",
    )
    target.add_argument(
        "--server-pid",
        type=_positive_int,
        metavar="PID",
        default=None,
        help="process id of the --server process on this machine, to read its"
        " CPU time and memory from /proc",
    )
    target.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the embedded server, such as"
        " SWITCHBOARD_LOG_LEVEL=warning; may be repeated",
    )
    output = common.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print the result as one JSON object"
    )
    output.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"directory for SCENARIO.json and the PNG charts (default: {DEFAULT_OUT})",
    )
    output.add_argument(
        "--report",
        type=Path,
        default=DEFAULT_REPORT,
        metavar="FILE",
        help="Markdown page whose generated block shows the latest run of each"
        f" scenario in --out (default: {DEFAULT_REPORT})",
    )
    output.add_argument(
        "--quiet", action="store_true", help="print no progress lines on stderr"
    )
    load = common.add_argument_group("load generator")
    load.add_argument(
        "--workers",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="load-generator processes (default: 0, one per 10,000 connections)",
    )
    return common


def _add_runs(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"repeat the measurement N times and report medians (default: {default})",
    )


def _add_wire(scenarios: Subcommands) -> None:
    wire = scenarios.add_parser(
        "wire",
        parents=[_common_options()],
        help="bytes on the socket per protocol step",
        description="Count the TCP payload bytes, in each direction, of"
        " connecting with nothing missed, one 1:1 'hello' exchange (Send, SendAck,"
        " Message, Cursor), one heartbeat round trip, and a reconnect that"
        " catches up one message.",
    )
    wire.add_argument(
        "--transport",
        type=parse_transports,
        default=list(TRANSPORTS),
        metavar="LIST",
        help="transports to measure, comma-separated: tcp, ws (default: tcp,ws)",
    )


def _add_idle(scenarios: Subcommands) -> None:
    idle = scenarios.add_parser(
        "idle",
        parents=[_common_options()],
        help="server memory per idle connection",
        description="Open authenticated idle connections in steps and measure"
        " the server's resident memory (VmRSS) and the kernel's TCP memory at"
        " each step.",
    )
    idle.add_argument(
        "--connections",
        type=parse_counts,
        default=[1000, 5000, 15000],
        metavar="LIST",
        help="connection counts to measure at, comma-separated, ascending"
        " (default: 1000,5000,15000)",
    )
    idle.add_argument(
        "--transport",
        type=parse_transports,
        default=list(TRANSPORTS),
        metavar="LIST",
        help="transports, comma-separated: tcp, ws; each gets a new server"
        " (default: tcp,ws)",
    )
    idle.add_argument(
        "--settle",
        type=_positive_float,
        default=3.0,
        metavar="SECONDS",
        help="wait after each step before reading memory (default: 3)",
    )


def _add_direct(scenarios: Subcommands) -> None:
    direct = scenarios.add_parser(
        "direct",
        parents=[_common_options()],
        help="1:1 message throughput, CPU per message and latency",
        description="Pairs of clients send 1:1 messages, each sender keeping"
        " at most --window unacknowledged. A saturation phase measures"
        " delivered messages per second and server CPU per message; offered-load"
        " phases send at fixed rates and measure end-to-end latency.",
    )
    direct.add_argument(
        "--pairs",
        type=_positive_int,
        default=100,
        metavar="N",
        help="sender and recipient pairs (default: 100)",
    )
    direct.add_argument(
        "--window",
        type=_positive_int,
        default=50,
        metavar="N",
        help="unacknowledged messages per sender (default: 50)",
    )
    direct.add_argument(
        "--duration",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="measured time of each phase (default: 10)",
    )
    direct.add_argument(
        "--warmup",
        type=_non_negative_float,
        default=2.0,
        metavar="SECONDS",
        help="unmeasured time before each phase's measurement (default: 2)",
    )
    direct.add_argument(
        "--rate",
        type=parse_rates,
        default=["half", 1000.0],
        metavar="LIST",
        help="offered loads in messages per second, comma-separated; 'half' is"
        " half the measured saturation rate. Without 'half' the saturation"
        " phase is skipped (default: half,1000)",
    )
    direct.add_argument(
        "--body-size",
        type=_positive_int,
        default=32,
        metavar="BYTES",
        help="message body size, at least 19 for the timestamp (default: 32)",
    )
    direct.add_argument(
        "--transport", choices=TRANSPORTS, default="tcp", help="(default: tcp)"
    )
    _add_runs(direct, 3)


def _add_storm(scenarios: Subcommands) -> None:
    storm = scenarios.add_parser(
        "storm",
        parents=[_common_options()],
        help="reconnect storm: time to resync, and latency meanwhile",
        description="Connected clients lose their connections at once (the"
        " generator resets them) and reconnect at random times within --spread"
        " seconds, each catching up the messages it missed. Measures the time"
        " until every client is back and synced, and the latency of a control"
        " pair's messages meanwhile.",
    )
    storm.add_argument(
        "--clients",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="clients in the storm (default: 10000)",
    )
    storm.add_argument(
        "--missed",
        type=_non_negative_int,
        default=1,
        metavar="N",
        help="messages each client catches up on when it reconnects (default: 1)",
    )
    storm.add_argument(
        "--control-rate",
        type=_positive_float,
        default=100.0,
        metavar="PER_SECOND",
        help="messages per second of the control pair (default: 100)",
    )
    storm.add_argument(
        "--spread",
        type=_non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="spread reconnects uniformly over this window, as clients do after"
        " a draining server sends them Reconnect; 0: all at once (default: 5,"
        " the server's default drain window)",
    )
    storm.add_argument(
        "--timeout",
        type=_positive_float,
        default=120.0,
        metavar="SECONDS",
        help="give up on clients not back within this time (default: 120)",
    )
    storm.add_argument(
        "--transport", choices=TRANSPORTS, default="tcp", help="(default: tcp)"
    )
    _add_runs(storm, 3)


def _add_heartbeat(scenarios: Subcommands) -> None:
    heartbeat = scenarios.add_parser(
        "heartbeat",
        parents=[_common_options()],
        help="server CPU per heartbeat of idle connections",
        description="Hold idle authenticated connections and measure the"
        " server's CPU time while they send no heartbeat, then while each sends"
        " one every --intervals seconds, spread evenly. Reports CPU per"
        " heartbeat above the idle baseline, and the echo round trip.",
    )
    heartbeat.add_argument(
        "--connections",
        type=_positive_int,
        default=15_000,
        metavar="N",
        help="idle connections (default: 15000)",
    )
    heartbeat.add_argument(
        "--intervals",
        type=parse_numbers,
        default=[30.0, 5.0],
        metavar="LIST",
        help="heartbeat intervals to measure, seconds, comma-separated; the"
        " server default is 30, shorter ones make the cost easier to measure"
        " (default: 30,5)",
    )
    heartbeat.add_argument(
        "--duration",
        type=_positive_float,
        default=20.0,
        metavar="SECONDS",
        help="measured time per interval, and of the idle baseline (default: 20)",
    )
    heartbeat.add_argument(
        "--transport", choices=TRANSPORTS, default="tcp", help="(default: tcp)"
    )
    _add_runs(heartbeat, 3)


def _add_fanout(scenarios: Subcommands) -> None:
    fanout = scenarios.add_parser(
        "fanout",
        parents=[_common_options()],
        help="group fan-out: server CPU per recipient and time to the last delivery",
        description="One sender sends into groups of each --sizes, created over"
        " the HTTP API, while a fraction of the members is online. Measures"
        " server CPU per recipient and the time from Send until the last online"
        " member has the message.",
    )
    fanout.add_argument(
        "--sizes",
        type=parse_counts,
        default=[100, 1000, 10_000],
        metavar="LIST",
        help="group sizes including the sender, comma-separated, ascending"
        " (default: 100,1000,10000)",
    )
    fanout.add_argument(
        "--online",
        type=_positive_float,
        default=0.1,
        metavar="FRACTION",
        help="fraction of the members other than the sender that is connected"
        " (default: 0.1)",
    )
    fanout.add_argument(
        "--messages",
        type=_positive_int,
        default=20,
        metavar="N",
        help="messages sent into each group, one after another; groups of"
        " fewer than 1,000 members get proportionally more (default: 20)",
    )
    fanout.add_argument(
        "--mode",
        dest="modes",
        type=parse_fanout_modes,
        default=list(FANOUT_MODES),
        metavar="LIST",
        help="group delivery modes, comma-separated, each on a new embedded"
        " server: 'write' copies each message into every member's inbox,"
        " 'read' keeps one group timeline. A --server keeps its own setting"
        " (default: write,read)",
    )
    fanout.add_argument(
        "--transport", choices=TRANSPORTS, default="tcp", help="(default: tcp)"
    )
    _add_runs(fanout, 3)


def parse_counts(text: str) -> list[int]:
    """Parse ``1000,5000`` into ascending positive counts."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or any(count <= 0 for count in counts) or counts != sorted(counts):
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected ascending whole numbers above 0,"
            " comma-separated, such as 1000,5000"
        )
    return counts


def parse_rates(text: str) -> list[float | str]:
    """Parse ``half,1000`` into rates above 0 and the word ``half``."""
    rates: list[float | str] = []
    for part in text.split(","):
        if part == "half":
            rates.append(part)
            continue
        try:
            value = float(part)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f"invalid rate {part!r} in {text!r}: expected 'half' or a number"
                " of messages per second above 0"
            )
        rates.append(value)
    return rates


def parse_numbers(text: str) -> list[float]:
    """Parse ``30,5`` into numbers above 0."""
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or not all(number > 0 for number in numbers):
        raise argparse.ArgumentTypeError(
            f"invalid list {text!r}: expected numbers above 0, comma-separated,"
            " such as 30,5"
        )
    return numbers


def parse_transports(text: str) -> list[str]:
    """Parse ``tcp,ws`` into a list of known transports."""
    return _parse_choices(text, TRANSPORTS, "transport")


def parse_fanout_modes(text: str) -> list[str]:
    """Parse ``write,read`` into a list of group delivery modes."""
    return _parse_choices(text, FANOUT_MODES, "mode")


def _parse_choices(text: str, choices: tuple[str, ...], kind: str) -> list[str]:
    """Parse a comma-separated list of ``choices``, dropping repeats."""
    names = text.split(",")
    if any(name not in choices for name in names):
        raise argparse.ArgumentTypeError(
            f"invalid {kind} list {text!r}: use {', '.join(choices)} or"
            f" {','.join(choices)}"
        )
    return list(dict.fromkeys(names))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a whole number above 0"
        )
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a whole number of 0 or more"
        )
    return value


def _positive_float(text: str) -> float:
    value = _parse_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number above 0"
        )
    return value


def _non_negative_float(text: str) -> float:
    value = _parse_float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number of 0 or more"
        )
    return value


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected a number"
        ) from None
