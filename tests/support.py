"""Real parts for tests: a fresh PostgreSQL database, a Redis db number, the simulated vendor
over HTTP, Celery worker processes. Each helper cleans up after itself."""

from __future__ import annotations

import contextlib
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from service.processes import ManagedProcess, free_port, start_vendor_sim, start_worker

PG_ADMIN = os.environ.get("CROWDBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = ("127.0.0.1", 6379)
API_KEY = "sk-test-crowdbridge-7f3a9c2e1d5b"  # distinctive, so tests can grep logs for it
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def redis_available() -> bool:
    try:
        return bool(redis.Redis(*REDIS_HOST, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def fresh_postgres() -> Iterator[str]:
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from service.storage.db import get_engine

        get_engine.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def schema_session(database: str) -> Iterator[Any]:
    """A SQLModel session on a fresh schema: ``"sqlite"`` in memory, or ``"postgresql"`` in a fresh database
    (skips the test when PostgreSQL is not reachable). For tests that run a domain function on both."""
    import pytest
    from sqlalchemy.pool import StaticPool
    from sqlmodel import Session, SQLModel, create_engine

    if database == "sqlite":
        engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
        SQLModel.metadata.create_all(engine)
        with Session(engine) as session:
            yield session
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (CROWDBRIDGE_TEST_PG)")
    with fresh_postgres() as url:
        engine = create_engine(url)
        SQLModel.metadata.create_all(engine)
        with Session(engine) as session:
            yield session
        engine.dispose()


@contextlib.contextmanager
def fresh_redis_db() -> Iterator[str]:
    """A Redis db number that nobody else in this run uses; flushed before and after."""
    db = random.randint(1, 15)
    client = redis.Redis(*REDIS_HOST, db=db)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST[0]}:{REDIS_HOST[1]}/{db}"
    finally:
        client.flushdb()


@dataclass
class Vendor:
    url: str
    process: ManagedProcess
    state_path: Path

    def ledger(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/sim/ledger", timeout=30).json()

    def truth(self) -> dict[str, str]:
        return httpx.get(f"{self.url}/sim/truth", timeout=30).json()

    def set_faults(self, **faults: float) -> None:
        httpx.post(f"{self.url}/sim/faults", json=faults, timeout=10).raise_for_status()


@contextlib.contextmanager
def running_vendor(tmp: Path, *args: str) -> Iterator[Vendor]:
    port = free_port()
    state = tmp / "vendor.db"
    proc = start_vendor_sim(port=port, state_path=state, api_key=API_KEY, log_path=tmp / "vendor.log",
                            extra_args=["--turnaround=0.5", *args])
    try:
        yield Vendor(url=f"http://127.0.0.1:{port}", process=proc, state_path=state)
    finally:
        proc.stop()


def settings_env(*, data_dir: Path, database_url: str, broker_url: str | None, vendor_url: str,
                 **extra: Any) -> dict[str, str]:
    env = {"CROWDBRIDGE_ENV": "test", "CROWDBRIDGE_DATA_DIR": str(data_dir),
           "CROWDBRIDGE_DATABASE_URL": database_url, "CROWDBRIDGE_SIMULATED__BASE_URL": vendor_url,
           "CROWDBRIDGE_SIMULATED__API_KEY": API_KEY, "CROWDBRIDGE_POLL_INTERVAL_S": "0.5",
           "CROWDBRIDGE_BATCH_SIZE": "25", "CROWDBRIDGE_REWARD_BACKBONE": "tiny-bert",
           "CROWDBRIDGE_RETRAIN_MIN_NEW_PAIRS": "1000000", "TRANSFORMERS_VERBOSITY": "error"}
    if broker_url:
        env["CROWDBRIDGE_BROKER_URL"] = broker_url
    env.update({f"CROWDBRIDGE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def apply_env(monkeypatch: Any, env: dict[str, str]) -> None:
    """Point this test process (the publisher) at the same settings as the worker processes."""
    from service.settings import get_settings
    from workers.app import app, configure

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    configure(app, get_settings())
    if app._pool is not None:  # connections to a previous test's broker
        with contextlib.suppress(Exception):
            app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def worker(env: dict[str, str], log: Path, **kwargs: Any) -> ManagedProcess:
    return start_worker(env=env, log_path=log, **kwargs)


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def pairwise_items(n: int, *, gold_every: int = 0) -> list[dict[str, Any]]:
    """Distinct synthetic pairs; the vendor's hidden truth comes from text hashes."""
    from connectors.simulated.crowd import TruthOracle, truth_label

    items = []
    for i in range(n):
        texts = [f"answer one to {i}", f"answer two to {i}"]
        gold = truth_label(TruthOracle(), "pairwise", texts) if gold_every and i % gold_every == 0 else None
        items.append({"id": f"item-{i}", "prompt": f"Question {i}: which answer is better?", "gold": gold,
                      "responses": [{"model_id": f"m{k}", "text": t} for k, t in enumerate(texts)]})
    return items
