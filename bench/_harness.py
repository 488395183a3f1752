"""Real parts for the pipeline and chaos benches: a private redis-server that can be restarted,
a fresh PostgreSQL database, the simulated vendor and Celery worker processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from service.domain.outbox import KNOWN_QUEUES
from service.processes import free_port

PG_ADMIN = os.environ.get("CROWDBRIDGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class PrivateRedis:
    """A redis-server of our own on a free port, without persistence, so a restart loses its queues."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> int:
        """Kill (no persistence: queued messages are gone) and start again; returns messages lost."""
        client = redis.Redis(port=self.port)
        lost = 0
        with contextlib.suppress(redis.RedisError):
            lost = sum(client.llen(q) for q in KNOWN_QUEUES) + client.hlen("unacked")
        self.stop()
        self.start()
        return lost


@contextlib.contextmanager
def fresh_postgres(prefix: str = "cb_bench") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from service.storage.db import get_engine

        get_engine.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
