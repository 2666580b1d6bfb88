"""``switchboard cluster up``: starts a working cluster and deletes it on exit."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import nats
import redis.asyncio as redis

from tests.support.nats import NATS_URL, start_nats
from tests.support.postgres import ADMIN_DSN, start_postgres

START_TIMEOUT_S = 90.0


async def cluster_traces(namespace: str) -> list[str]:
    """Return what is left of the cluster in PostgreSQL, NATS and Redis."""
    left = []
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        if await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", f"{namespace}_db"
        ):
            left.append("database")
    finally:
        await conn.close()

    client = await nats.connect(NATS_URL)
    try:
        streams = await client.jetstream().streams_info()
        left += [s.config.name for s in streams if namespace in (s.config.name or "")]
    finally:
        await client.close()

    keys = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        left += [str(key) async for key in keys.scan_iter(match=f"{namespace}:*")]
    finally:
        await keys.aclose()
    return left


async def test_cluster_up_runs_and_cleans_up(tmp_path: Path) -> None:
    start_postgres()
    start_nats()
    launcher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard",
        "cluster",
        "up",
        "--port",
        "0",
        "--work-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
    )
    assert launcher.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            first = (await launcher.stdout.readline()).decode()
            url_line = (await launcher.stdout.readline()).decode()
        match = re.match(r"cluster (\S+) is up", first)
        assert match, first
        namespace = match.group(1)
        base_url = url_line.split()[-1]

        async with httpx.AsyncClient() as http:
            listing = (await http.get(f"{base_url}/v1/gateways")).json()["gateways"]
        assert sorted(g["transport"] for g in listing) == ["tcp", "tcp", "ws", "ws"]
        assert "database" in await cluster_traces(namespace)
    finally:
        launcher.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            rest = await launcher.stdout.read()
            await launcher.wait()

    assert launcher.returncode == 0
    assert b"cluster stopped and its data deleted" in rest
    assert await cluster_traces(namespace) == []
    logs = await asyncio.to_thread(lambda: sorted(tmp_path.glob("*.log")))
    assert [path.name for path in logs] == [
        "dispatcher.log",
        "gateway1.log",
        "gateway2.log",
        "logic1.log",
        "logic2.log",
    ]
