"""Limits on failed logins: they slow password guessing without locking owners out.

Three token buckets count failed logins, each refilled evenly over
``login_failure_window`` seconds:

- per (account, IP address): when empty, that address gets RATE_LIMITED for
  that account. The owner logging in from another address is not affected.
- per IP address: when empty, that address gets RATE_LIMITED for every
  account. Each rejection while empty doubles the wait, up to the window.
- per account, over all addresses: when empty, every attempt on the account
  waits ``login_slowdown`` seconds before its password is checked. This slows
  guessing from many addresses without locking the owner out.

NOTE: the counts live in this process, so each of a cluster's dispatchers
counts on its own; behind a reverse proxy every client has the proxy's
address until the server reads the client's address from the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Hashable
from typing import TypeVar

from switchboard.config import Settings
from switchboard.errors import ErrorCode, RequestError
from switchboard.logs import RateLimitedLog
from switchboard.ratelimit import KeyedLimiter

__all__ = ["LoginGuard"]

logger = logging.getLogger("switchboard.logic")

MAX_BACKOFF_STEPS = 16
"""Maximum count of rejections in a row that the per-address backoff tracks."""

K = TypeVar("K", bound=Hashable)


class LoginGuard:
    """Counts failed logins by account, address and both, and applies the limits."""

    def __init__(self, settings: Settings) -> None:
        self._window = settings.login_failure_window
        self._slowdown = settings.login_slowdown
        self._by_pair: KeyedLimiter[tuple[str, str]] = _limiter(
            settings.login_failures_per_account_ip, self._window
        )
        self._by_ip: KeyedLimiter[str] = _limiter(
            settings.login_failures_per_ip, self._window
        )
        self._by_account: KeyedLimiter[str] = _limiter(
            settings.login_failures_per_account, self._window
        )
        self._ip_rejections: dict[str, int] = {}
        """Rejections of each address in a row, for the backoff."""
        self._log = RateLimitedLog(logger)

    async def admit(self, name: str, peer: str) -> None:
        """Raise RequestError RATE_LIMITED, or wait, before a password check.

        ``peer`` is the client's IP address; ``name`` the account name tried.
        """
        now = time.monotonic()
        pair_wait = self._by_pair.wait((name, peer), now)
        ip_wait = self._ip_wait(peer, now)
        if pair_wait > 0 or ip_wait > 0:
            scope = "account from this address" if pair_wait >= ip_wait else "address"
            self._log.warning(
                f"login-rejected:{peer}",
                "login rejected name=%s peer=%s: too many failed logins for this %s",
                name,
                peer,
                scope,
            )
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                f"too many failed logins for this {scope}; try again after retry_after",
                retry_after_ms=math.ceil(max(pair_wait, ip_wait) * 1000),
            )
        if self._by_account.wait(name, now) > 0:
            self._log.warning(
                f"login-slowed:{name}",
                "login slowed down name=%s peer=%s: too many failed logins for"
                " this account from all addresses",
                name,
                peer,
            )
            await asyncio.sleep(self._slowdown)

    def failed(self, name: str, peer: str) -> None:
        """Count a failed login of ``name`` from ``peer``."""
        now = time.monotonic()
        self._by_pair.take((name, peer), now)
        self._by_ip.take(peer, now)
        self._by_account.take(name, now)

    def _ip_wait(self, peer: str, now: float) -> float:
        """Return the wait of ``peer``, growing with each rejection in a row.

        The n-th rejection in a row puts the bucket 2**(n-1) seconds deeper
        into debt, while the wait stays below the window.
        """
        wait = self._by_ip.wait(peer, now)
        if wait <= 0:
            self._ip_rejections.pop(peer, None)
            return 0.0
        steps = self._ip_rejections.get(peer, 0)
        if len(self._ip_rejections) > 100_000:
            self._ip_rejections.clear()
        self._ip_rejections[peer] = min(steps + 1, MAX_BACKOFF_STEPS)
        if steps and wait < self._window:
            extra = min(2.0 ** (steps - 1), self._window - wait)
            self._by_ip.debit(peer, now, extra * self._by_ip.rate)
        return self._by_ip.wait(peer, now)


def _limiter(failures: int, window: float) -> KeyedLimiter[K]:
    """Return a limiter of ``failures`` per ``window`` seconds; 0 disables it."""
    return KeyedLimiter(failures / window if failures else 0, max(failures, 1))
