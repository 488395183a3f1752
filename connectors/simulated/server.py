"""``crowdbridge vendor-sim``: a real HTTP crowd vendor on 127.0.0.1.

API (JSON; ``Authorization: Bearer <api key>`` on every /v1 route):

- ``POST /v1/batches`` ``{external_id, kind, raters_per_item, rating_scale, reward_per_judgment,
  instructions, tasks: [{id, prompt, responses: [..]}]}`` -> 201 with the batch, or 200 with
  ``"replayed": true`` when ``external_id`` already exists (the vendor's idempotency).
- ``GET /v1/batches/{id}`` -> ``{id, external_id, state, tasks_total, judgments_expected, judgments_done}``
- ``GET /v1/batches/{id}/judgments?cursor=N&limit=100`` (at most 10,000) -> ``{judgments: [...], next_cursor, has_more}``:
  records in the order they were returned; re-reading a cursor gives the same page.
- ``POST /v1/batches/{id}/cancel`` -> idempotent; work not yet returned is withdrawn.
- ``GET /sim/ledger``, ``GET /sim/truth?batch_id=``, ``POST /sim/faults``: the simulator's own books,
  hidden truth and fault knobs (not part of a real vendor).

Faults (``FaultConfig``): 5xx (before or after doing the work), 429 with Retry-After, slow
answers, duplicate deliveries and malformed records in result pages.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from connectors.simulated.crowd import CrowdConfig, TruthOracle, build_pool, rater_answer, truth_label
from connectors.simulated.state import VendorState

__all__ = ["FaultConfig", "create_app", "serve"]


@dataclass(frozen=True)
class FaultConfig:
    error_rate: float = 0.0  # share of /v1 requests answered 503 (half of them after doing the work)
    rate_limit_rate: float = 0.0  # share answered 429
    retry_after_s: float = 1.0
    slow_rate: float = 0.0  # share delayed by slow_s
    slow_s: float = 2.0
    duplicate_rate: float = 0.0  # share of returned judgments delivered a second time
    malformed_rate: float = 0.0  # malformed records injected per returned judgment


class TaskIn(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    prompt: str
    responses: list[str] = Field(min_length=1, max_length=26)


class BatchIn(BaseModel):
    external_id: str = Field(min_length=1, max_length=200)
    kind: str = Field(pattern="^(pairwise|ranking|rating|binary)$")
    raters_per_item: int = Field(ge=1, le=100)
    rating_scale: int = Field(5, ge=2, le=10)
    reward_per_judgment: float = Field(0.0, ge=0)
    instructions: str = ""
    tasks: list[TaskIn] = Field(min_length=1, max_length=10_000)


def create_app(*, state_path: Path, api_key: str, crowd: CrowdConfig | None = None,
               faults: FaultConfig | None = None, oracle: TruthOracle | None = None) -> FastAPI:
    app = FastAPI(title="crowdbridge simulated vendor")
    state = VendorState(state_path)
    crowd = crowd or CrowdConfig()
    pool = build_pool(crowd)
    oracle = oracle or TruthOracle()
    knobs: dict[str, Any] = {"faults": faults or FaultConfig(),
                             # one-shot faults (POST /sim/once): the next N requests / records, then back to normal
                             "once": {"fail_after_write": 0, "rate_limit": 0, "duplicate": 0, "malformed": 0}}
    rng = random.Random(crowd.seed + 1)
    rng_lock = threading.Lock()

    def chance(p: float) -> bool:
        with rng_lock:
            return p > 0 and rng.random() < p

    def authorize(authorization: str | None) -> None:
        if authorization != f"Bearer {api_key}":
            raise HTTPException(401, "missing or wrong API key")

    def once(name: str) -> bool:
        with rng_lock:
            if knobs["once"][name] > 0:
                knobs["once"][name] -= 1
                return True
            return False

    def inject_faults(write: bool) -> str | None:
        """Maybe fail this request; returns "after" when a 5xx must come after the work is done."""
        if once("rate_limit"):
            raise HTTPException(429, "slow down", headers={"Retry-After": f"{knobs['faults'].retry_after_s:g}"})
        if write and once("fail_after_write"):
            return "after"
        f: FaultConfig = knobs["faults"]
        if chance(f.slow_rate):
            time.sleep(f.slow_s)
        if chance(f.rate_limit_rate):
            raise HTTPException(429, "slow down", headers={"Retry-After": f"{f.retry_after_s:g}"})
        if chance(f.error_rate):
            if write and chance(0.5):
                return "after"
            raise HTTPException(503, "vendor temporarily unavailable")
        return None

    def batch_json(conn: Any, row: dict[str, Any]) -> dict[str, Any]:
        done = conn.execute("SELECT COUNT(*) FROM assignment WHERE batch_id = ? AND seq IS NOT NULL",
                            (row["id"],)).fetchone()[0]
        live = conn.execute("SELECT COUNT(*) FROM assignment WHERE batch_id = ? AND cancelled = 0",
                            (row["id"],)).fetchone()[0]
        expected = live if row["cancelled"] else row["expected"]
        state_name = "cancelled" if row["cancelled"] else ("completed" if done >= expected else
                                                           "in_progress" if done else "pending")
        return {"id": row["id"], "external_id": row["external_id"], "state": state_name,
                "tasks_total": row["tasks_total"], "judgments_expected": expected, "judgments_done": done}

    def materialize(conn: Any, batch_id: str, now: float) -> None:
        """Turn assignments that are due into delivered records, with duplicates and malformed ones.

        Each record's JSON was built when the batch was created; without duplicate or malformed
        faults to inject, delivering is two SQL statements (no Python per record)."""
        f: FaultConfig = knobs["faults"]
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM delivery WHERE batch_id = ?",
                           (batch_id,)).fetchone()[0]
        with rng_lock:
            clean = not (f.duplicate_rate or f.malformed_rate or knobs["once"]["duplicate"]
                         or knobs["once"]["malformed"])
        if clean:
            produced = conn.execute(
                "UPDATE assignment SET seq = due.seq FROM (SELECT id, ? + ROW_NUMBER() OVER (ORDER BY due_at, id) "
                "AS seq FROM assignment WHERE batch_id = ? AND seq IS NULL AND cancelled = 0 AND due_at <= ?) AS due "
                "WHERE assignment.id = due.id", (seq, batch_id, now)).rowcount
            if produced:
                conn.execute("INSERT INTO delivery SELECT batch_id, seq, 'judgment', body FROM assignment "
                             "WHERE batch_id = ? AND seq > ?", (batch_id, seq))
                state.bump(conn, "judgments_produced", produced)
            return
        due = conn.execute("SELECT id, task_id, body FROM assignment "
                           "WHERE batch_id = ? AND seq IS NULL AND cancelled = 0 AND due_at <= ? "
                           "ORDER BY due_at, id", (batch_id, now)).fetchall()
        if not due:
            return
        deliveries: list[tuple[str, int, str, str]] = []
        seqs: list[tuple[int, str]] = []
        counts = {"judgments_produced": 0, "duplicates_sent": 0, "malformed_sent": 0}
        for a_id, task_id, body in due:
            seq += 1
            deliveries.append((batch_id, seq, "judgment", body))
            seqs.append((seq, a_id))
            counts["judgments_produced"] += 1
            if chance(f.duplicate_rate) or once("duplicate"):
                seq += 1
                deliveries.append((batch_id, seq, "duplicate", body))
                counts["duplicates_sent"] += 1
            if chance(f.malformed_rate) or once("malformed"):
                seq += 1
                bad = rng.choice([
                    '{"id": "%s-x", "task_id": "%s", "worker_id": null, "answer": "A"}' % (a_id, task_id),
                    '{"id": "%s-y", "task_id": "%s", "answer": "purple", "worker_id": "w"}' % (a_id, task_id),
                    '"<error>record %s could not be serialised</error>"' % a_id,
                ])
                deliveries.append((batch_id, seq, "malformed", bad))
                counts["malformed_sent"] += 1
        conn.executemany("INSERT INTO delivery VALUES (?, ?, ?, ?)", deliveries)
        conn.executemany("UPDATE assignment SET seq = ? WHERE id = ?", seqs)
        for name, n in counts.items():
            if n:
                state.bump(conn, name, n)

    @app.post("/v1/batches")
    def create_batch(body: BatchIn, authorization: str | None = Header(None)) -> JSONResponse:
        authorize(authorization)
        late_failure = inject_faults(write=True)
        now = time.time()
        with state.tx() as conn:
            state.bump(conn, "submit_requests")
            row = conn.execute("SELECT id FROM batch WHERE external_id = ?", (body.external_id,)).fetchone()
            if row is not None:
                state.bump(conn, "submit_replays")
                payload = {**batch_json(conn, state.batch_row(conn, row[0]) or {}), "replayed": True}
                status = 200
            else:
                batch_id = f"sb_{uuid.uuid4().hex[:16]}"
                expected = len(body.tasks) * body.raters_per_item
                conn.execute("INSERT INTO batch VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                             (batch_id, body.external_id, body.kind, body.rating_scale, len(body.tasks),
                              expected, now, body.reward_per_judgment))
                rows, truths = [], []
                prefix = f"sj_{uuid.uuid4().hex[:20]}"  # + a 12-hex counter: unique, and one urandom per batch
                for task in body.tasks:
                    truth = truth_label(oracle, body.kind, task.responses, body.rating_scale)
                    truths.append((task.id, truth))
                    seed = int(hashlib.sha256(f"{body.external_id}/{task.id}".encode()).hexdigest()[:12], 16)
                    local = random.Random(seed)
                    for rater in local.sample(pool, min(body.raters_per_item, len(pool))):
                        label = rater_answer(local, rater, body.kind, truth, len(task.responses),
                                             body.rating_scale, crowd.tie_rate)
                        due = now + local.lognormvariate(0, 0.6) * crowd.turnaround_s * rater.speed
                        started = due - local.uniform(0.3, 1.0) * crowd.work_time_s * rater.speed
                        a_id = f"{prefix}{len(rows):012x}"
                        # the record as it will be delivered, built once here
                        record = state.dumps({"id": a_id, "task_id": task.id, "worker_id": rater.rater_id,
                                              "answer": label, "started_at": started, "submitted_at": due,
                                              "cost_usd": body.reward_per_judgment})
                        rows.append((a_id, batch_id, task.id, rater.rater_id, label, truth, started, due,
                                     body.reward_per_judgment, record))
                conn.executemany("INSERT OR REPLACE INTO task_truth VALUES (?, ?)", truths)
                conn.executemany("INSERT INTO assignment VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?)", rows)
                state.bump(conn, "batches_created")
                payload = {**batch_json(conn, state.batch_row(conn, batch_id) or {}), "replayed": False}
                status = 201
        if late_failure:
            raise HTTPException(503, "vendor temporarily unavailable")
        return JSONResponse(payload, status_code=status)

    @app.get("/v1/batches/{batch_id}")
    def get_batch(batch_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        authorize(authorization)
        inject_faults(write=False)
        with state.tx() as conn:
            row = state.batch_row(conn, batch_id)
            if row is None:
                raise HTTPException(404, f"no batch {batch_id}")
            materialize(conn, batch_id, time.time())
            return batch_json(conn, row)

    @app.get("/v1/batches/{batch_id}/judgments")
    def list_judgments(batch_id: str, cursor: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=10_000),
                       authorization: str | None = Header(None)) -> Response:
        authorize(authorization)
        inject_faults(write=False)
        with state.tx() as conn:
            if state.batch_row(conn, batch_id) is None:
                raise HTTPException(404, f"no batch {batch_id}")
            materialize(conn, batch_id, time.time())
            rows = conn.execute("SELECT seq, body FROM delivery WHERE batch_id = ? AND seq > ? ORDER BY seq "
                                "LIMIT ?", (batch_id, cursor, limit + 1)).fetchall()
        page = rows[:limit]
        # the page is assembled as raw JSON text so that malformed records reach the client as sent
        body = '{"judgments":[' + ",".join(b for _, b in page) + '],"next_cursor":' + \
            str(page[-1][0] if page else cursor) + ',"has_more":' + ("true" if len(rows) > limit else "false") + "}"
        return Response(content=body, media_type="application/json")

    @app.post("/v1/batches/{batch_id}/cancel")
    def cancel_batch(batch_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        authorize(authorization)
        inject_faults(write=True)
        with state.tx() as conn:
            row = state.batch_row(conn, batch_id)
            if row is None:
                raise HTTPException(404, f"no batch {batch_id}")
            materialize(conn, batch_id, time.time())
            if not row["cancelled"]:
                conn.execute("UPDATE batch SET cancelled = 1 WHERE id = ?", (batch_id,))
                conn.execute("UPDATE assignment SET cancelled = 1 WHERE batch_id = ? AND seq IS NULL", (batch_id,))
                state.bump(conn, "batches_cancelled")
            return batch_json(conn, state.batch_row(conn, batch_id) or row)

    @app.get("/sim/ledger")
    def ledger() -> dict[str, Any]:
        return state.ledger()

    @app.get("/sim/truth")
    def truth(task_id: list[str] | None = Query(None)) -> dict[str, str]:
        with state.tx() as conn:
            if task_id:
                marks = ",".join("?" * len(task_id))
                return dict(conn.execute(f"SELECT task_id, truth FROM task_truth WHERE task_id IN ({marks})",
                                         task_id).fetchall())
            return dict(conn.execute("SELECT task_id, truth FROM task_truth").fetchall())

    @app.post("/sim/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        knobs["faults"] = replace(knobs["faults"], **(await request.json()))
        return asdict(knobs["faults"])

    @app.post("/sim/once")
    async def set_once(request: Request) -> dict[str, int]:
        """One-shot faults: {"fail_after_write": 1} fails the next write after doing it, and so on."""
        body = await request.json()
        with rng_lock:
            for name, count in body.items():
                if name not in knobs["once"]:
                    raise HTTPException(422, f"unknown one-shot fault {name!r}; known: {sorted(knobs['once'])}")
                knobs["once"][name] = int(count)
            return dict(knobs["once"])

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app



def serve(*, host: str = "127.0.0.1", port: int = 8765, state_path: Path, api_key: str,
          crowd: CrowdConfig | None = None, faults: FaultConfig | None = None,
          truth_files: list[Path] | None = None) -> None:
    """Run the vendor in this process until interrupted (``crowdbridge vendor-sim``)."""
    import uvicorn

    oracle = TruthOracle.from_files(truth_files or [])
    app = create_app(state_path=state_path, api_key=api_key, crowd=crowd, faults=faults, oracle=oracle)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
