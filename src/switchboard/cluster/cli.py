"""Commands of the clustered mode: ``gateway``, ``logic``, ``dispatcher``, ``cluster``.

This module imports no client of NATS, Redis or PostgreSQL, so that
``switchboard serve`` runs without the ``cluster`` extra. A command imports
its role when it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Final, TypeAlias

from switchboard.cluster.settings import ClusterSettings
from switchboard.config import Settings, parse_address
from switchboard.errors import SwitchboardError
from switchboard.logs import configure_logging

__all__ = ["add_cluster_commands"]

logger = logging.getLogger("switchboard.cluster")

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
ROLE_PORTS: Final = {
    "gateway": (7070, 7081),
    "logic": (0, 7090),
    "dispatcher": (0, 7080),
}
"""Default TCP and HTTP ports of each role; 0: the role has no TCP listener."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_cluster_commands(subcommands: Subcommands) -> None:
    """Add the role commands and ``cluster up`` to the ``switchboard`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    _add_common_options(common)
    _add_role(
        subcommands,
        common,
        "gateway",
        "hold client connections of a cluster (TCP, and WebSocket at /v1/ws)",
    )
    _add_role(
        subcommands,
        common,
        "logic",
        "run a logic worker of a cluster: authentication, sequencing, storage",
    )
    _add_role(
        subcommands,
        common,
        "dispatcher",
        "serve a cluster's HTTP API and its gateway list (GET /v1/gateways)",
    )
    from switchboard.cluster.launcher_cli import add_cluster_up

    add_cluster_up(subcommands)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    defaults = ClusterSettings()
    parser.add_argument(
        "--namespace",
        metavar="NAME",
        help="prefix of the NATS stream, subjects and bucket and of the Redis"
        f" keys (default: $SWITCHBOARD_NAMESPACE, else {defaults.namespace})",
    )
    parser.add_argument(
        "--nats",
        metavar="URL",
        help=f"NATS server (default: $SWITCHBOARD_NATS_URL, else {defaults.nats_url})",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help=f"Redis server (default: $SWITCHBOARD_REDIS_URL, else"
        f" {defaults.redis_url})",
    )
    parser.add_argument(
        "--postgres",
        metavar="DSNS",
        help="comma-separated PostgreSQL DSNs, database 0 first (default:"
        f" $SWITCHBOARD_POSTGRES_DSNS, else {defaults.postgres_dsns})",
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="name of this process in logs and in the cluster (default: the"
        " role and the host name)",
    )
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="address of the HTTP listener (default: 127.0.0.1 and the role's"
        " port: dispatcher 7080, gateway 7081, logic 7090)",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help="log level (default: $SWITCHBOARD_LOG_LEVEL, else info)",
    )


def _add_role(
    subcommands: Subcommands,
    common: argparse.ArgumentParser,
    role: str,
    summary: str,
) -> None:
    parser = subcommands.add_parser(
        role,
        parents=[common],
        help=summary,
        description=f"Run one {role} process of a cluster until SIGTERM or"
        " SIGINT. SWITCHBOARD_<SETTING> environment variables set any server or"
        " cluster setting (docs/configuration.md); an option given here wins"
        " over its variable.",
    )
    if role == "gateway":
        parser.add_argument(
            "--tcp",
            metavar="HOST:PORT",
            help="address of the TCP listener (default: 127.0.0.1:7070)",
        )
    if role == "dispatcher":
        parser.add_argument(
            "--data-dir",
            type=Path,
            metavar="DIR",
            help="directory of uploaded media (default: ./switchboard-data)",
        )
    parser.set_defaults(run_server=_run_role, role=role)


def build_settings(
    role: str, args: argparse.Namespace
) -> tuple[Settings, ClusterSettings]:
    """Return the settings of ``role``: defaults, then variables, then options.

    Raises ValueError naming the setting or variable that is invalid.
    """
    settings = Settings()
    settings.tcp_port, settings.http_port = ROLE_PORTS[role]
    settings.apply_environ(os.environ)
    cluster = ClusterSettings()
    cluster.apply_environ(os.environ)

    if getattr(args, "tcp", None) is not None:
        settings.tcp_host, settings.tcp_port = parse_address(args.tcp, 7070)
    if args.http is not None:
        settings.http_host, settings.http_port = parse_address(
            args.http, ROLE_PORTS[role][1]
        )
    if getattr(args, "data_dir", None) is not None:
        settings.data_dir = args.data_dir
    if args.log_level is not None:
        settings.log_level = args.log_level
    for option, field_name in (
        ("namespace", "namespace"),
        ("nats", "nats_url"),
        ("redis", "redis_url"),
        ("postgres", "postgres_dsns"),
        ("name", "name"),
    ):
        value = getattr(args, option)
        if value is not None:
            setattr(cluster, field_name, value)

    settings.validate()
    cluster.validate()
    return settings, cluster


def _run_role(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    role: str = args.role
    try:
        settings, cluster = build_settings(role, args)
    except ValueError as exc:
        parser.error(str(exc))
    configure_logging(settings.log_level)

    from switchboard.cluster.serving import run_until_stopped

    if role == "gateway":
        from switchboard.cluster.gateway_role import run_gateway

        main = run_gateway(settings, cluster)
    elif role == "logic":
        from switchboard.cluster.logic_role import run_logic

        main = run_logic(settings, cluster)
    else:
        from switchboard.cluster.dispatcher_role import run_dispatcher

        main = run_dispatcher(settings, cluster)
    try:
        run_until_stopped(main)
    except Exception as exc:
        if not _is_service_error(exc):
            logger.error("the %s crashed", role, exc_info=True)
        print(f"switchboard: error: the {role} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _is_service_error(exc: Exception) -> bool:
    """Return whether ``exc`` is a failure of a service, not of Switchboard.

    Unreachable services and rejected credentials end a role this way, at
    start-up, and need no traceback.
    """
    if isinstance(exc, SwitchboardError | OSError | ValueError):
        return True
    package = type(exc).__module__.split(".")[0]
    return package in ("asyncpg", "nats", "redis")
