"""CPU time per part of a run (vendor, workers, PostgreSQL, Redis, this process), from /proc via psutil.

A part is a process tree. Its CPU time is the sum, over the live processes of the tree, of their own user +
system time plus what they collected from children they reaped (``children_user/system``): a pool child
recycled by ``worker_max_tasks_per_child``, or a PostgreSQL backend that ended, is counted by its parent,
and a live process is counted once. Read before and after a run; the difference is what the run cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import psutil
import psycopg

__all__ = ["CpuMeter", "postmaster_pid"]


def _tree_seconds(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def postmaster_pid(admin_url: str) -> int | None:
    """The PostgreSQL server's main process (its backends are its children), or None if not readable."""
    with contextlib.suppress(Exception), psycopg.connect(admin_url, autocommit=True) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        with open(f"{data_dir}/postmaster.pid") as f:
            return int(f.readline())
    return None


class CpuMeter:
    """``parts``: name -> root pids. ``start()``, then ``stop()`` returns CPU seconds per part."""

    def __init__(self, parts: Mapping[str, Sequence[int | None]]) -> None:
        self.parts = {name: [p for p in pids if p is not None] for name, pids in parts.items()}
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        me = psutil.Process()
        out = {}
        for name, pids in self.parts.items():
            # this process: its own time only (its children are the other parts)
            out[name] = sum(sum(me.cpu_times()[:2]) if pid == me.pid else _tree_seconds(pid) for pid in pids)
        return out

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        end = self._read()
        return {name: max(0.0, end[name] - self._start.get(name, 0.0)) for name in end}
