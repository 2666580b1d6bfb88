"""Statistics over HTTP: ``GET /metrics`` and the admin API.

``GET /metrics`` serves the Prometheus text format without a token, as
Prometheus scrapes it; expose the HTTP port only to trusted networks or put
the path behind the reverse proxy's authentication. The admin API needs the
bearer token of an account named in the ``admins`` setting:

- ``GET /v1/admin/stats``: the figures, each gateway's load and the last
  hour's message rates and connection counts.
- ``POST /v1/admin/gateways/{name}/drain``: make the gateway refuse new
  connections and tell each client to reconnect elsewhere, spread over
  ``drain_window`` seconds.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from switchboard.api.app import ApiError, CurrentSession, Services
from switchboard.api.directory import DrainOutcome, GatewayDirectory
from switchboard.bus.base import GatewayLoad
from switchboard.logic.stats import SharedCountersError, Stats
from switchboard.logs import RateLimitedLog
from switchboard.store.base import Session

__all__ = ["gateway_loads", "refresh_stats", "router"]

logger = logging.getLogger("switchboard.api")

router = APIRouter()
_stats_failures = RateLimitedLog(logger)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def gateway_loads(services: Services) -> list[GatewayLoad]:
    """Return the load of each gateway: this process's one, or the cluster's."""
    if services.directory is not None:
        return await services.directory.loads()
    if services.gateway is None:
        return []
    settings = services.settings
    host = settings.advertise_host or settings.tcp_host
    return [services.gateway.load(f"{host}:{services.tcp_port}")]


async def refresh_stats(services: Services) -> Stats:
    """Bring the statistics up to date and return them.

    In a cluster the counters become the sums over every process. When the
    shared counters cannot be read, the last sums read are reported again.
    """
    stats = services.chat.stats
    if services.counters is not None:
        try:
            stats.shared = await services.counters.totals(stats)
        except SharedCountersError as exc:
            _stats_failures.warning(
                "counters",
                "reading the cluster's statistics counters failed; reporting"
                " the last totals read: %r",
                exc,
            )
    await stats.refresh(services.store, await gateway_loads(services))
    return stats


async def current_admin(request: Request, session: CurrentSession) -> Session:
    """Return the caller's session if the caller is an admin; else raise 403."""
    services: Services = request.app.state.services
    admins = services.settings.admin_names
    user = await services.store.get_user(session.user_id)
    if user is None or user.name not in admins:
        name = user.name if user is not None else str(session.user_id)
        logger.warning("admin request rejected: user %s is not an admin", name)
        hint = (
            "ask an operator to add the account to SWITCHBOARD_ADMINS"
            if admins
            else "no admins are configured: set SWITCHBOARD_ADMINS to account names"
        )
        raise ApiError(403, "forbidden", f"user {name!r} is not an admin; {hint}")
    return session


AdminSession = Annotated[Session, Depends(current_admin)]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Serve every statistic in the Prometheus text format."""
    services: Services = request.app.state.services
    stats = await refresh_stats(services)
    return Response(stats.metrics_text(), media_type=PROMETHEUS_TEXT)


@router.get("/v1/admin/stats", tags=["admin"])
async def admin_stats(request: Request, admin: AdminSession) -> dict[str, Any]:
    """Return the statistics and the last hour's history (admins only)."""
    services: Services = request.app.state.services
    stats = await refresh_stats(services)
    return stats.snapshot()


@router.post("/v1/admin/gateways/{name}/drain", tags=["admin"])
async def drain_gateway(
    name: str, request: Request, admin: AdminSession, force: bool = False
) -> dict[str, Any]:
    """Drain gateway ``name``: refuse new connections, then tell every client
    to reconnect elsewhere after a delay spread over ``drain_window``.

    Draining the last gateway that accepts connections leaves clients
    nowhere to go, so it is refused with 409 unless ``force`` is set.
    """
    services: Services = request.app.state.services
    if services.directory is not None:
        return await _drain_remote(services.directory, name, admin, force)
    gateway = services.gateway
    if gateway is None or name != gateway.name:
        raise ApiError(404, "gateway_not_found", f"no gateway named {name!r}")
    if gateway.draining:
        raise ApiError(409, "already_draining", f"gateway {name!r} is draining already")
    if not force:
        raise ApiError(
            409,
            "last_gateway",
            f"gateway {name!r} is the only one accepting clients; stop the"
            " server with SIGTERM, or drain with force=true to leave it"
            " running without clients",
        )
    logger.info("admin user %d drains gateway %s", admin.user_id, name)
    gateway.stop_reading()
    await services.chat.wait_idle()
    clients = gateway.send_reconnect(
        services.settings.drain_window, "drained by an admin"
    )
    return {"gateway": name, "clients_told": clients}


async def _drain_remote(
    directory: GatewayDirectory, name: str, admin: Session, force: bool
) -> dict[str, Any]:
    """Ask a cluster's gateway to drain; it does so within a report interval."""
    outcome = await directory.drain(name, force=force)
    if outcome is DrainOutcome.NOT_FOUND:
        raise ApiError(404, "gateway_not_found", f"no gateway named {name!r}")
    if outcome is DrainOutcome.ALREADY_DRAINING:
        raise ApiError(409, "already_draining", f"gateway {name!r} is draining already")
    if outcome is DrainOutcome.LAST_GATEWAY:
        raise ApiError(
            409,
            "last_gateway",
            f"gateway {name!r} is the only one accepting clients; start another"
            " gateway first, or drain with force=true",
        )
    logger.info("admin user %d asked gateway %s to drain", admin.user_id, name)
    return {"gateway": name, "drain_requested": True}
