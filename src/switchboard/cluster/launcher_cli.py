"""``switchboard cluster up``: a local cluster in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from switchboard.logs import configure_logging

__all__ = ["add_cluster_up"]


def add_cluster_up(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    cluster = subcommands.add_parser(
        "cluster", help="run a whole cluster on this machine, for development"
    )
    actions = cluster.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser(
        "up",
        help="start a dispatcher, gateways and logic workers until Ctrl-C",
        description="Start a dispatcher, 2 gateways and 2 logic workers against"
        " PostgreSQL, Redis and NATS on this machine (scripts/services starts"
        " them). The cluster gets a fresh PostgreSQL database and fresh NATS and"
        " Redis names, all deleted when it stops on SIGINT or SIGTERM.",
    )
    up.add_argument(
        "--port",
        type=int,
        default=7080,
        metavar="PORT",
        help="dispatcher port on 127.0.0.1: the server URL for clients (default: 7080)",
    )
    up.add_argument("--gateways", type=int, default=2, metavar="N")
    up.add_argument("--logic-workers", type=int, default=2, metavar="N")
    up.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="directory of the processes' logs (default: a new temporary one)",
    )
    up.add_argument("--nats", default="nats://127.0.0.1:4222", metavar="URL")
    up.add_argument("--redis", default="redis://127.0.0.1:6379/0", metavar="URL")
    up.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        metavar="URL",
        help="PostgreSQL server, without a database name; the cluster creates"
        " and drops its own database (default: %(default)s)",
    )
    up.set_defaults(run_server=_cluster_up)


def _cluster_up(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.gateways < 1 or args.logic_workers < 1:
        parser.error("--gateways and --logic-workers must be at least 1")
    configure_logging("info")
    # httpx logs every readiness probe at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from switchboard.cluster.launcher import LocalCluster

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="switchboard-cluster-"))
    cluster = LocalCluster(
        work_dir,
        gateways=args.gateways,
        logic_workers=args.logic_workers,
        dispatcher_port=args.port,
        nats_url=args.nats,
        redis_url=args.redis,
        postgres_url=args.postgres,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        cluster.start()
    except Exception as exc:
        print(f"switchboard: error: the cluster did not start: {exc}", file=sys.stderr)
        return 1

    print(f"cluster {cluster.namespace} is up; logs in {work_dir}")
    print(f"  server URL (dispatcher): {cluster.base_url}")
    for gateway in cluster.gateways:
        tcp = f"127.0.0.1:{gateway.tcp_port}"
        print(
            f"  {gateway.name}: tcp {tcp}, ws ws://127.0.0.1:{gateway.http_port}/v1/ws"
        )
    for worker in cluster.logic:
        print(f"  {worker.name}: metrics {worker.http_url}/metrics")
    print("Ctrl-C stops it and deletes its data.", flush=True)

    while not stop.wait(1.0):
        exited = [p.name for p in cluster.processes if not p.running]
        if exited:
            print(f"switchboard: error: {', '.join(exited)} exited", file=sys.stderr)
            break
    cluster.stop()
    print("cluster stopped and its data deleted")
    return 0
