"""Settings shared by the roles of a cluster: where the services are, and names.

Like :class:`~switchboard.config.Settings`, every field can be set with a
``SWITCHBOARD_<FIELD>`` environment variable, for example
``SWITCHBOARD_REDIS_URL=redis://10.0.0.5:6379/0``. This module imports no
client of those services.
"""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from switchboard.config import apply_environ

__all__ = ["ClusterSettings"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(slots=True)
class ClusterSettings:
    """Settings of ``switchboard gateway``, ``logic`` and ``dispatcher``.

    Every process of one deployment needs the same ``namespace``,
    ``partitions``, ``postgres_dsns`` and ``lease_ttl``. Times are in seconds.
    """

    namespace: str = "switchboard"
    """Prefix of the NATS stream, subjects and bucket, and of the Redis keys,
    so that several deployments (or test runs) can share the services."""
    nats_url: str = "nats://127.0.0.1:4222"
    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_dsns: str = "postgresql://postgres@127.0.0.1:5432/switchboard"
    """Comma-separated DSNs of the PostgreSQL databases, database 0 first;
    shards are spread evenly over them (docs/deploy.md)."""
    postgres_pool_size: int = 10
    """Connections each process opens to each database, at most."""
    partitions: int = 16
    """Partitions of the inbound stream: the most logic workers that can
    share the load. Fixed when the stream is created."""
    lease_ttl: float = 10.0
    """How long a crashed gateway stays listed and keeps its routes, and how
    long a crashed logic worker's partitions wait for another worker."""
    name: str = ""
    """This process's name in logs, the gateway registry and partition
    ownership; empty: the host name. A gateway adds a random suffix at each
    start, because connection numbers restart with the process."""
    advertise_tcp: str = ""
    """``host:port`` a gateway lists for TCP clients; empty: the advertise
    host (else the listening host) and the TCP port."""
    advertise_ws: str = ""
    """WebSocket URL a gateway lists; empty: ``ws://HOST:PORT/v1/ws`` from
    the advertise host (else the listening host) and the HTTP port."""
    publish_timeout: float = 30.0
    """How long a gateway retries storing one frame in NATS before it
    closes the client's connection."""

    def apply_environ(self, environ: Mapping[str, str]) -> None:
        """Override fields from ``SWITCHBOARD_<FIELD>`` variables."""
        apply_environ(self, environ)

    def validate(self) -> None:
        """Raise ValueError naming the setting when a value cannot work."""
        if not _NAME.fullmatch(self.namespace):
            raise ValueError(
                f"invalid namespace {self.namespace!r}: use 1 to 40 of A-Z, a-z,"
                " 0-9, '_' and '-'"
            )
        if self.name and not _NAME.fullmatch(self.name):
            raise ValueError(
                f"invalid name {self.name!r}: use 1 to 40 of A-Z, a-z, 0-9, '_' and '-'"
            )
        if not self.dsns:
            raise ValueError("invalid postgres_dsns: give at least one DSN")
        if self.partitions < 1:
            raise ValueError(f"invalid partitions {self.partitions}: use 1 or more")
        for field_name in ("lease_ttl", "publish_timeout"):
            if not getattr(self, field_name) > 0:
                raise ValueError(
                    f"invalid {field_name}={getattr(self, field_name)}: use a"
                    " number of seconds above 0"
                )
        if self.postgres_pool_size < 1:
            raise ValueError(
                f"invalid postgres_pool_size {self.postgres_pool_size}: use 1 or more"
            )

    @property
    def dsns(self) -> list[str]:
        """The DSNs in ``postgres_dsns``."""
        return [dsn.strip() for dsn in self.postgres_dsns.split(",") if dsn.strip()]

    @property
    def redis_prefix(self) -> str:
        return f"{self.namespace}:"

    def process_name(self, role: str, *, unique: bool = False) -> str:
        """Return this process's name: ``name``, else ``<role>-<host>``.

        With ``unique`` a random suffix is added.
        """
        base = self.name or f"{role}-{_host_token()}"
        return f"{base}-{secrets.token_hex(3)}" if unique else base


def _host_token() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:24]
    return host or "host"
