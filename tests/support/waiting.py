"""Polling for conditions that no event reports, within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["eventually", "eventually_async"]


async def eventually(
    condition: Callable[[], bool], within: float = 20.0, interval: float = 0.05
) -> None:
    """Return once ``condition()`` is true; raise TimeoutError after ``within`` s."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - nothing signals these conditions
            await asyncio.sleep(interval)


async def eventually_async(
    condition: Callable[[], Awaitable[bool]],
    within: float = 20.0,
    interval: float = 0.1,
) -> None:
    """Like eventually(), for a condition that is a coroutine function."""
    async with asyncio.timeout(within):
        while not await condition():  # noqa: ASYNC110 - likewise
            await asyncio.sleep(interval)
