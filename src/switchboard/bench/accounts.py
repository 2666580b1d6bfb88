"""Accounts and device tokens for load-generator clients.

A login costs one argon2 password hash on the server, about 80 ms of CPU
(argon2-cffi 25.1 defaults on one core of the 2-core AMD EPYC this module was
written on), so 15,000 logins over HTTP would take minutes. For an embedded
server the bench therefore writes the accounts and sessions into the
server's database before starting it, through the same Store interface the
server uses: one argon2 hash in all, and a token per client as
``POST /v1/sessions`` would issue it. For a server given by URL it can only
log in over HTTP, a few requests at a time.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from switchboard.bench.target import BenchError
from switchboard.ids import DeviceId, UserId
from switchboard.logic.auth import PLATFORMS, TOKEN_BYTES, token_digest
from switchboard.store.base import Session
from switchboard.store.sqlite import SqliteStore

__all__ = ["Credential", "login_over_http", "seed_store"]

logger = logging.getLogger("switchboard.bench")

PASSWORD = "bench-password"
TOKEN_TTL_MS = 7 * 24 * 3600 * 1000
"""Lifetime of seeded tokens: long enough for any benchmark."""
SEED_BATCH = 2000
"""Store writes queued at once while seeding; the store commits them in groups."""
HTTP_CONCURRENCY = 8
"""Logins in flight at once; the server hashes passwords on a thread pool."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A token bound to one device of one user."""

    user_id: int
    device: str
    token: str
    name: str
    """Account name, for HTTP requests that name users."""


def _names(prefix: str, users: int) -> list[str]:
    return [f"{prefix}{index}" for index in range(users)]


async def seed_store(
    data_dir: Path, users: int, devices_per_user: int = 1, prefix: str = "bench"
) -> list[Credential]:
    """Create ``users`` accounts with ``devices_per_user`` sessions each.

    Writes to ``data_dir/switchboard.db``, which no server may have open.
    Returns the credentials user by user, devices in order.
    """
    password_hash = PasswordHasher().hash(PASSWORD)
    now = int(time.time() * 1000)
    store = SqliteStore(data_dir / "switchboard.db")
    await store.open()
    try:
        names = _names(prefix, users)
        user_ids: list[UserId] = []
        for start in range(0, users, SEED_BATCH):
            batch = names[start : start + SEED_BATCH]
            created = await asyncio.gather(
                *(store.create_user(name, password_hash, now) for name in batch)
            )
            user_ids.extend(user.id for user in created)

        credentials = [
            Credential(user_id, f"d{device}", secrets.token_urlsafe(TOKEN_BYTES), name)
            for user_id, name in zip(user_ids, names, strict=True)
            for device in range(devices_per_user)
        ]
        platform = PLATFORMS["cli"]
        for start in range(0, len(credentials), SEED_BATCH):
            sessions = [
                Session(
                    token_hash=token_digest(credential.token),
                    user_id=UserId(credential.user_id),
                    device=DeviceId(credential.device),
                    platform=platform,
                    created_at=now,
                    expires_at=now + TOKEN_TTL_MS,
                )
                for credential in credentials[start : start + SEED_BATCH]
            ]
            await asyncio.gather(*(store.create_session(item) for item in sessions))
    finally:
        await store.close()
    return credentials


async def login_over_http(
    base_url: str, users: int, devices_per_user: int = 1, prefix: str = ""
) -> list[Credential]:
    """Create accounts over HTTP and log each device in.

    Costs ``users`` password hashes for the accounts and one per device for
    the logins. Account names start with ``prefix`` (default: ``b`` and six
    random hex digits), so runs against one server do not collide.
    """
    prefix = prefix or f"b{secrets.token_hex(3)}-"
    names = _names(prefix, users)
    limit = asyncio.Semaphore(HTTP_CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:

        async def create(name: str) -> None:
            async with limit:
                response = await http.post(
                    "/v1/accounts", json={"name": name, "password": PASSWORD}
                )
            _check(response, f"creating account {name}")

        async def login(name: str, device: str) -> Credential:
            body = {
                "name": name,
                "password": PASSWORD,
                "device": device,
                "platform": "cli",
            }
            async with limit:
                response = await http.post("/v1/sessions", json=body)
            _check(response, f"logging in {name} on device {device}")
            data = response.json()
            return Credential(data["user_id"], device, data["token"], name)

        started = time.monotonic()
        await asyncio.gather(*(create(name) for name in names))
        credentials = await asyncio.gather(
            *(
                login(name, f"d{device}")
                for name in names
                for device in range(devices_per_user)
            )
        )
        logger.info(
            "logged in %d devices over HTTP in %.1f s",
            len(credentials),
            time.monotonic() - started,
        )
    return list(credentials)


def _check(response: httpx.Response, action: str) -> None:
    if response.status_code not in (200, 201):
        raise BenchError(
            f"{action} failed with HTTP {response.status_code}: {response.text[:200]}"
        )
