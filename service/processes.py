"""Child processes that the demo and the tests start: the simulated vendor and Celery workers.

Each child runs in its own process group so that stopping it stops everything it forked
(Celery's prefork children included), on a normal exit, an exception or Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["ManagedProcess", "free_port", "start_vendor_sim", "start_worker", "wait_http"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


class ManagedProcess:
    def __init__(self, name: str, args: Sequence[str], *, env: Mapping[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.args, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if log_path:
            log.close()  # type: ignore[union-attr]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the worker and its pool children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait(timeout=5)
        self.kill(signal.SIGKILL)  # stragglers in the group (orphaned pool children)


def start_vendor_sim(*, port: int, state_path: Path, api_key: str, log_path: Path | None = None,
                     extra_args: Sequence[str] = (), truth_files: Sequence[Path] = ()) -> ManagedProcess:
    args = [sys.executable, "-m", "service.cli", "vendor-sim", "--port", str(port), "--state", str(state_path),
            "--api-key", api_key, *[f"--truth={p}" for p in truth_files], *extra_args]
    proc = ManagedProcess("vendor-sim", args, log_path=log_path)
    wait_http(f"http://127.0.0.1:{port}/healthz", process=proc.process)
    return proc


def start_worker(*, env: Mapping[str, str], queues: str = "default,reconcile,training", concurrency: int = 2,
                 beat: bool = True, log_path: Path | None = None, name: str = "worker",
                 extra_args: Sequence[str] = ()) -> ManagedProcess:
    args = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queues, "-c", str(concurrency),
            "--loglevel", "INFO", "-n", f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h", "--without-gossip",
            "--without-mingle"]
    if beat:
        args.append("-B")
    args.extend(extra_args)
    return ManagedProcess(name, args, env=env, log_path=log_path)
