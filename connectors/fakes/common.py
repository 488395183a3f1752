"""What every fake vendor shares: a simulated crowd, one-shot fault knobs, a ledger, a server thread.

A fake is a FastAPI app that speaks one vendor's HTTP API (request shapes, auth header,
pagination, error codes, callback signing) and keeps in-memory state. Work is done by a
deterministic simulated crowd: each (task, rater) answer becomes visible ``turnaround_s`` after
the task was created (times spread 0.5-1.5x), so a client must poll until done.

Test-only controls live under ``/_fake`` (never part of a vendor's API):

- ``POST /_fake/faults`` ``{"rate_limit": 1, "retry_after": 1, "unavailable": 0, "fail_after_write": 0,
  "duplicate": 1, "malformed": 1}``: one-shot counters, each consumed by the next request(s) or
  result deliveries;
- ``GET /_fake/ledger``: what the vendor did (objects created, per idempotency handle, requests seen).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["Crowd", "FakeVendor", "Faults", "RunningFake", "canonical_answer", "serve_in_thread"]


@dataclass
class Faults:
    rate_limit: int = 0  # next N API requests: 429 with Retry-After
    retry_after: float = 1.0
    unavailable: int = 0  # next N API requests: 503 before doing anything
    fail_after_write: int = 0  # next N writes: do the work, then answer 503 (the "5xx but created" case)
    duplicate: int = 0  # next N result deliveries: one already-delivered record is sent again
    malformed: int = 0  # next N result deliveries: one broken record is added


def _seed(*parts: object) -> int:
    return int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def canonical_answer(kind: str, n_responses: int, task_key: str, rater: str, scale: int = 5) -> str:
    """A deterministic, mildly noisy answer in canonical form (``connectors.base`` labels)."""
    rng = random.Random(_seed(task_key, rater))
    truth_first = _seed(task_key) % 2 == 0
    if kind == "pairwise":
        roll = rng.random()
        if roll < 0.1:
            return "tie"
        good = roll < 0.8
        return "A" if truth_first == good else "B"
    if kind == "ranking":
        letters = [chr(ord("A") + i) for i in range(n_responses)]
        rng.shuffle(letters)
        return ">".join(letters)
    if kind == "rating":
        return str(rng.randint(1, scale))
    return "up" if rng.random() < 0.6 else "down"


@dataclass
class Crowd:
    """Raters ``<prefix>0..n-1``; a task's overlap picks distinct raters deterministically."""

    prefix: str = "worker-"
    n_raters: int = 12
    turnaround_s: float = 0.3

    def raters_for(self, task_key: str, overlap: int) -> list[str]:
        pool = [f"{self.prefix}{i}" for i in range(self.n_raters)]
        return random.Random(_seed(task_key, "raters")).sample(pool, min(overlap, len(pool)))

    def due(self, created: float, task_key: str, rater: str) -> float:
        return created + self.turnaround_s * (0.5 + random.Random(_seed(task_key, rater, "t")).random())


@dataclass
class FakeVendor:
    """Shared mutable state of one fake: a lock, the fault knobs, the ledger, the crowd."""

    name: str
    api_key: str
    crowd: Crowd = field(default_factory=Crowd)
    faults: Faults = field(default_factory=Faults)
    counters: Counter[str] = field(default_factory=Counter)
    creations: Counter[str] = field(default_factory=Counter)  # per idempotency handle / external id
    lock: threading.RLock = field(default_factory=threading.RLock)
    callbacks: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)  # sent, for tests

    def take(self, knob: str) -> bool:
        with self.lock:
            if getattr(self.faults, knob) > 0:
                setattr(self.faults, knob, getattr(self.faults, knob) - 1)
                return True
            return False

    def ledger(self) -> dict[str, Any]:
        with self.lock:
            return {"counters": dict(self.counters), "creations": dict(self.creations),
                    "faults": asdict(self.faults), "callbacks_sent": len(self.callbacks)}

    def post_callback(self, url: str, headers: dict[str, str], body: bytes) -> None:
        """Deliver one callback the way vendors do: a POST, short timeout, failures only counted."""
        with self.lock:
            self.callbacks.append((url, headers, body))
        try:
            httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=2.0)
            self.counters["callbacks_ok"] += 1
        except httpx.HTTPError:
            self.counters["callbacks_failed"] += 1


def install_controls(app: FastAPI, vendor: FakeVendor, *, write_methods: tuple[str, ...] = ("POST", "PUT",
                                                                                          "PATCH", "DELETE"),
                     error_body: Callable[[int, str], dict[str, Any]] | None = None) -> None:
    """Add the ``/_fake`` routes and the fault middleware (429 / 503 / 503-after-work) to ``app``."""
    body_for = error_body or (lambda status, message: {"error": message, "status_code": status})

    @app.middleware("http")
    async def faults(request: Request, call_next: Callable[[Request], Any]) -> Response:
        if request.url.path.startswith("/_fake") or request.url.path.startswith("/_hooks"):
            return await call_next(request)
        vendor.counters["requests"] += 1
        if vendor.take("rate_limit"):
            vendor.counters["rate_limited"] += 1
            return JSONResponse(body_for(429, "Too many requests"), status_code=429,
                                headers={"Retry-After": f"{vendor.faults.retry_after:g}"})
        if vendor.take("unavailable"):
            vendor.counters["unavailable"] += 1
            return JSONResponse(body_for(503, "Service unavailable"), status_code=503)
        after = request.method in write_methods and vendor.take("fail_after_write")
        response = await call_next(request)
        if after:
            vendor.counters["failed_after_write"] += 1
            return JSONResponse(body_for(500, "Internal server error"), status_code=500)
        return response

    @app.post("/_fake/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        changes = await request.json()
        with vendor.lock:
            for key, value in changes.items():
                if not hasattr(vendor.faults, key):
                    return JSONResponse({"error": f"unknown fault {key}"}, status_code=400)  # type: ignore[return-value]
                setattr(vendor.faults, key, type(getattr(vendor.faults, key))(value))
            return asdict(vendor.faults)

    @app.post("/_fake/crowd")
    async def set_crowd(request: Request) -> dict[str, Any]:
        changes = await request.json()
        with vendor.lock:
            for key, value in changes.items():
                setattr(vendor.crowd, key, type(getattr(vendor.crowd, key))(value))
            return asdict(vendor.crowd)

    @app.get("/_fake/ledger")
    def ledger() -> dict[str, Any]:
        return vendor.ledger()


@dataclass
class RunningFake:
    url: str
    vendor: FakeVendor
    server: Any
    thread: threading.Thread

    def set_faults(self, **knobs: Any) -> None:
        httpx.post(f"{self.url}/_fake/faults", json=knobs, timeout=5).raise_for_status()

    def ledger(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_fake/ledger", timeout=5).json()

    def set_crowd(self, **changes: Any) -> None:
        httpx.post(f"{self.url}/_fake/crowd", json=changes, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, vendor: FakeVendor, *, ticker: Callable[[], None] | None = None,
                    tick_s: float = 0.1) -> Iterator[RunningFake]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a daemon thread; ``ticker`` runs every tick
    (fakes use it to send callbacks for work that became due)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"fake-{vendor.name}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"fake {vendor.name} did not start")
        time.sleep(0.02)
    stop_ticker = threading.Event()

    def tick_loop() -> None:
        while not stop_ticker.wait(tick_s):
            with contextlib.suppress(Exception):
                ticker()  # type: ignore[misc]

    tick_thread = threading.Thread(target=tick_loop, daemon=True) if ticker else None
    if tick_thread:
        tick_thread.start()
    running = RunningFake(url=f"http://127.0.0.1:{port}", vendor=vendor, server=server, thread=thread)
    try:
        yield running
    finally:
        stop_ticker.set()
        running.stop()
        sock.close()


@dataclass
class Work:
    """One rater's answer on one task; visible once ``due`` has passed (unless withdrawn first)."""

    id: str
    task_id: str
    rater: str
    label: str  # canonical
    created: float
    due: float
    withdrawn: bool = False

    def done(self, now: float) -> bool:
        return not self.withdrawn and self.due <= now


def plan_work(vendor: FakeVendor, task_id: str, kind: str, n_responses: int, overlap: int, *,
              scale: int = 5, start: float | None = None, id_prefix: str = "") -> list[Work]:
    start = time.time() if start is None else start
    return [Work(id=f"{id_prefix}{hashlib.sha256(f'{task_id}/{r}'.encode()).hexdigest()[:20]}", task_id=task_id,
                 rater=r, label=canonical_answer(kind, n_responses, task_id, r, scale), created=start,
                 due=vendor.crowd.due(start, task_id, r))
            for r in vendor.crowd.raters_for(task_id, overlap)]
