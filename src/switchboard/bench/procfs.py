"""Readers for Linux /proc: process CPU time and RSS, kernel socket memory.

Every ``parse_*`` function takes the text of one /proc file, so tests can feed
it literal samples; the ``read_*`` functions read the live files. Field
positions follow proc(5).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLOCK_TICKS",
    "PAGE_SIZE",
    "FileLimit",
    "SocketStats",
    "machine_info",
    "parse_cpu_model",
    "parse_host_cpu",
    "parse_open_files_limit",
    "parse_sockstat",
    "parse_stat_cpu_seconds",
    "parse_status_rss",
    "raise_file_limit",
    "read_cpu_seconds",
    "read_host_cpu",
    "read_open_files_limit",
    "read_rss",
    "read_socket_stats",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second, the unit of utime and stime in /proc/PID/stat."""
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
"""Bytes per page, the unit of the ``mem`` fields in /proc/net/sockstat."""


def parse_stat_cpu_seconds(text: str) -> float:
    """Return utime + stime, in seconds, from the text of /proc/PID/stat.

    The second field, the command name in parentheses, may itself contain
    spaces and parentheses, so fields are counted from the last ``)``.
    """
    end = text.rfind(")")
    if end < 0:
        raise ValueError(f"invalid /proc/PID/stat line: {text[:80]!r}")
    fields = text[end + 2 :].split()
    # fields[0] is field 3 (state), so utime (field 14) is fields[11].
    if len(fields) < 13:
        raise ValueError(f"invalid /proc/PID/stat line: {text[:80]!r}")
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parse_status_rss(text: str) -> int:
    """Return VmRSS, in bytes, from the text of /proc/PID/status."""
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r} in {line!r}")
            return int(value) * 1024
    raise ValueError("no VmRSS line in /proc/PID/status; is the process a zombie?")


@dataclass(frozen=True, slots=True)
class SocketStats:
    """TCP lines of /proc/net/sockstat: socket counts and buffer memory."""

    inuse: int
    """TCP sockets in use, including listening ones."""
    orphan: int
    time_wait: int
    alloc: int
    """TCP sockets allocated, including those in TIME_WAIT and orphans."""
    memory: int
    """Bytes of socket buffer memory charged to TCP (``mem``, in pages)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def parse_sockstat(text: str, page_size: int = PAGE_SIZE) -> SocketStats:
    """Parse the ``TCP:`` line of /proc/net/sockstat.

    A line reads ``TCP: inuse 13 orphan 0 tw 7 alloc 16 mem 387``: name and
    value pairs, with ``mem`` in pages.
    """
    for line in text.splitlines():
        if not line.startswith("TCP:"):
            continue
        words = line.split()[1:]
        values = dict(zip(words[::2], map(int, words[1::2]), strict=True))
        return SocketStats(
            inuse=values["inuse"],
            orphan=values["orphan"],
            time_wait=values["tw"],
            alloc=values["alloc"],
            memory=values["mem"] * page_size,
        )
    raise ValueError("no TCP line in /proc/net/sockstat")


def parse_host_cpu(text: str) -> tuple[int, int]:
    """Return (busy, total) clock ticks of all CPUs from the text of /proc/stat.

    Busy is every state but idle and iowait, from the ``cpu`` line.
    """
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = [int(value) for value in line.split()[1:9]]
            if len(ticks) < 5:
                break
            total = sum(ticks)
            return total - ticks[3] - ticks[4], total
    raise ValueError("no cpu line in /proc/stat")


def read_host_cpu() -> tuple[int, int]:
    """Return (busy, total) clock ticks of all CPUs of this host since boot."""
    return parse_host_cpu(Path("/proc/stat").read_text())


def parse_open_files_limit(text: str) -> int | None:
    """Return the soft ``Max open files`` limit from /proc/PID/limits.

    Returns None when the limit is ``unlimited`` or the line is missing.
    """
    for line in text.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


def read_open_files_limit(pid: int) -> int | None:
    """Return the soft limit on open files of process ``pid``, or None."""
    try:
        return parse_open_files_limit(Path(f"/proc/{pid}/limits").read_text())
    except OSError:
        return None


def parse_cpu_model(text: str) -> str:
    """Return the first ``model name`` of /proc/cpuinfo, or "unknown"."""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "model name":
            return value.strip()
    return "unknown"


def read_cpu_seconds(pid: int) -> float:
    """Return the CPU time, user plus system, that process ``pid`` has used."""
    return parse_stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def read_rss(pid: int) -> int:
    """Return the resident set size of process ``pid``, in bytes."""
    return parse_status_rss(Path(f"/proc/{pid}/status").read_text())


def read_socket_stats() -> SocketStats:
    """Return this host's TCP socket counts and buffer memory.

    The counts cover every TCP socket of the network namespace, so with a
    load generator on the same host both ends of each connection count.
    """
    return parse_sockstat(Path("/proc/net/sockstat").read_text())


@dataclass(frozen=True, slots=True)
class FileLimit:
    """RLIMIT_NOFILE of this process before and after raising it."""

    before: int
    after: int
    hard: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def raise_file_limit() -> FileLimit:
    """Raise this process's soft limit on open files to the hard limit.

    Child processes inherit the raised limit. An unprivileged process cannot
    go above the hard limit, so that is as far as it goes.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    after = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return FileLimit(before=soft, after=after, hard=hard)


def machine_info() -> dict[str, Any]:
    """Describe the machine and software a benchmark ran on."""
    try:
        cpu_model = parse_cpu_model(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu_model = platform.processor() or "unknown"
    try:
        uvloop_version: str | None = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uvloop_version = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_bytes": os.sysconf("SC_PHYS_PAGES") * PAGE_SIZE,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "uvloop": uvloop_version,
        "switchboard": importlib.metadata.version("switchboard"),
    }
