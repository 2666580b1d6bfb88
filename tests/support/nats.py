"""NATS JetStream on the local server for tests, with names private to a test.

Each test gets a namespace ``sb_test_<random>``; its stream and key-value
bucket are deleted afterwards, so runs in parallel never share frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess

import nats
from nats.js.errors import NotFoundError

from switchboard.bus.nats_partitions import BusNames
from tests.support.postgres import ROOT

NATS_URL = "nats://127.0.0.1:4222"


def start_nats() -> None:
    """Start the local server with scripts/services unless it is running."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "services"), "nats"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/services nats failed: {result.stderr}")


def new_namespace() -> str:
    return f"sb_test_{secrets.token_hex(4)}"


async def delete_namespace(namespace: str) -> None:
    """Delete the stream and the bucket of ``namespace``, if they exist."""
    names = BusNames(namespace)
    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(names.stream)
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(names.owners_bucket)
    finally:
        await client.close()


def delete_namespace_sync(namespace: str) -> None:
    asyncio.run(delete_namespace(namespace))
