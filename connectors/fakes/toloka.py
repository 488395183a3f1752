"""A fake of Toloka's API v1 (``<url>/api/v1/...``, the surface ``toloka-kit`` 1.2 calls with ``url=``).

Auth ``Authorization: OAuth <token>`` or ``ApiKey <key>``; errors ``{"code", "message", "request_id"}``.
Projects ``POST/GET /v1/projects``; pools ``POST /v1/pools``, ``GET /v1/pools?project_id&sort&id_gt``,
``GET /v1/pools/{id}``, ``POST /v1/pools/{id}/open|close`` (202 + operation); tasks
``POST /v1/tasks?async_mode=true&allow_defaults=true&open_pool=true&operation_id=`` (202 + operation;
a reused ``operation_id`` -> 409 ``OPERATION_ALREADY_EXISTS``), ``GET /v1/operations/{id}``;
assignments ``GET /v1/assignments?pool_id&status=SUBMITTED,ACCEPTED&submitted_gte&sort&limit``
-> ``{items, has_more}`` (one task per suite: ``tasks[0].input_values``, ``solutions[0].output_values``).
A pool closes itself (``last_close_reason: COMPLETED``) once every assignment is in.
Webhooks: ``PUT /v1/webhook-subscriptions`` ``[{webhook_url, event_type, pool_id, secret_key}]``;
deliveries ``{"events": [...]}`` signed with ``Toloka-Signature``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work
from connectors.webhooks import sign_toloka

__all__ = ["create_app"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "")).replace(tzinfo=timezone.utc).timestamp()


def create_app(vendor: FakeVendor | None = None) -> FastAPI:
    vendor = vendor or FakeVendor("toloka", "toloka-token", crowd=Crowd(prefix=""))
    app = FastAPI(title="fake Toloka")
    install_controls(app, vendor, write_methods=("POST", "PUT", "PATCH"),
                     error_body=lambda status, msg: {"code": {429: "TOO_MANY_REQUESTS"}.get(status, "INTERNAL_ERROR"),
                                                     "message": msg, "request_id": uuid.uuid4().hex})
    projects: dict[str, dict[str, Any]] = {}
    pools: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any]] = {}
    work: dict[str, list[Work]] = {}
    operations: dict[str, dict[str, Any]] = {}
    operation_logs: dict[str, list[dict[str, Any]]] = {}
    hooks: list[dict[str, Any]] = []
    sent: set[str] = set()
    seq = {"n": 0}
    lock = threading.RLock()

    def err(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"code": code, "message": message, "request_id": uuid.uuid4().hex}, status_code=status)

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization", "") in (f"OAuth {vendor.api_key}", f"ApiKey {vendor.api_key}")

    def pub(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def next_id() -> str:
        seq["n"] += 1
        return f"{seq['n']:012d}--{uuid.uuid4().hex[:24]}"

    def refresh_pool(pool: dict[str, Any], now: float) -> None:
        mine = [w for t in tasks.values() if t["pool_id"] == pool["id"] for w in work.get(t["id"], [])]
        if pool["status"] == "OPEN" and mine and all(w.done(now) for w in mine):
            pool.update(status="CLOSED", last_close_reason="COMPLETED", last_stopped=_iso(now))

    def assignment(w: Work) -> dict[str, Any]:
        task = tasks[w.task_id]
        pool = pools[task["pool_id"]]
        return {"id": w.id, "task_suite_id": "ts-" + w.id[-12:], "pool_id": pool["id"], "user_id": w.rater,
                "status": "SUBMITTED", "reward": pool["reward_per_assignment"], "mixed": False, "automerged": False,
                "tasks": [{"id": task["id"], "input_values": task["input_values"]}],
                "solutions": [{"output_values": {"result": w.label}}],
                "created": _iso(w.created), "submitted": _iso(w.due)}

    @app.post("/api/v1/projects")
    async def create_project(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        body = await request.json()
        pid = str(len(projects) + 1)
        with lock:
            projects[pid] = {**body, "id": pid, "status": "ACTIVE", "created": _iso(time.time())}
            vendor.creations[f"project:{body.get('private_comment')}"] += 1
            return JSONResponse(projects[pid], status_code=201)

    @app.get("/api/v1/projects")
    def find_projects(request: Request, status: str | None = None) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            rows = [p for p in projects.values() if not status or p["status"] == status]
            return JSONResponse({"items": rows, "has_more": False})

    @app.post("/api/v1/pools")
    async def create_pool(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        body = await request.json()
        if body.get("project_id") not in projects:
            return err(400, "VALIDATION_ERROR", "project_id does not exist")
        if float(body.get("reward_per_assignment") or 0) < 0.005:
            return err(400, "VALIDATION_ERROR", "reward_per_assignment must be >= 0.005")
        with lock:
            pid = str(1000 + len(pools) + 1)
            pools[pid] = {**body, "id": pid, "status": "CLOSED", "created": _iso(time.time()),
                          "last_close_reason": "NOT_STARTED",
                          "_kind": (body.get("metadata") or {}).get("kind", ["pairwise"])[0],
                          "_n": lambda t: len(t["input_values"].get("responses") or [1, 1])}
            vendor.creations[f"pool:{body.get('private_name')}"] += 1
            return JSONResponse(pub(pools[pid]), status_code=201)

    @app.get("/api/v1/pools")
    def find_pools(request: Request, project_id: str | None = None, id_gt: str | None = None,
                   limit: int = 50) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            rows = sorted((p for p in pools.values() if not project_id or p["project_id"] == project_id),
                          key=lambda p: int(p["id"]))
            rows = [p for p in rows if not id_gt or int(p["id"]) > int(id_gt)]
            return JSONResponse({"items": [pub(p) for p in rows[:limit]], "has_more": len(rows) > limit})

    @app.get("/api/v1/pools/{pool_id}")
    def get_pool(pool_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            if pool_id not in pools:
                return err(404, "DOES_NOT_EXIST", "no such pool")
            refresh_pool(pools[pool_id], time.time())
            return JSONResponse(pub(pools[pool_id]))

    def operation(kind: str, status: str = "SUCCESS", **details: Any) -> dict[str, Any]:
        op = {"id": str(uuid.uuid4()), "type": kind, "status": status, "submitted": _iso(time.time()),
              "finished": _iso(time.time()), "parameters": details}
        operations[op["id"]] = op
        return op

    @app.post("/api/v1/pools/{pool_id}/{action}")
    def pool_action(pool_id: str, action: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            pool = pools.get(pool_id)
            if pool is None or action not in ("open", "close"):
                return err(404, "DOES_NOT_EXIST", "no such pool")
            now = time.time()
            refresh_pool(pool, now)
            if action == "open" and pool["status"] != "OPEN" and pool["last_close_reason"] == "NOT_STARTED":
                pool["status"] = "OPEN"
                for task in tasks.values():
                    if task["pool_id"] == pool_id and task["id"] not in work:
                        work[task["id"]] = plan_work(vendor, task["id"], pool["_kind"], pool["_n"](task),
                                                     task["overlap"], start=now, id_prefix=next_id()[:14])
            elif action == "close" and pool["status"] == "OPEN":
                pool.update(status="CLOSED", last_close_reason="MANUAL", last_stopped=_iso(now))
                for task in tasks.values():
                    if task["pool_id"] == pool_id:
                        for w in work.get(task["id"], []):
                            if not w.done(now):
                                w.withdrawn = True
                vendor.counters["pools_closed"] += 1
            elif action == "close":
                return JSONResponse(status_code=204, content=None)
            return JSONResponse(operation(f"POOL.{action.upper()}", pool_id=pool_id), status_code=202)

    @app.post("/api/v1/tasks")
    async def create_tasks(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        body = await request.json()
        q = request.query_params
        op_id = q.get("operation_id")
        with lock:
            if op_id and op_id in operations:
                return err(409, "OPERATION_ALREADY_EXISTS", f"operation {op_id} already exists")
            rows = body if isinstance(body, list) else [body]
            now = time.time()
            log: list[dict[str, Any]] = []
            for row in rows:
                pool = pools.get(str(row.get("pool_id")))
                if pool is None:
                    return err(400, "VALIDATION_ERROR", "pool_id does not exist")
                tid = next_id()
                # the operation log: the SDK maps its objects to created ids through "__item_idx"
                log.append({"type": "TASK_CREATE", "success": True, "input": dict(row), "output": {"task_id": tid},
                            "datetime": _iso(now)})
                overlap = int(row.get("overlap") or pool["defaults"]["default_overlap_for_new_tasks"])
                tasks[tid] = {"id": tid, "pool_id": pool["id"], "input_values": row["input_values"],
                              "overlap": overlap, "created": _iso(now)}
                vendor.creations[f"task:{row['input_values'].get('item_id')}@{pool['id']}"] += 1
            if q.get("open_pool") == "true":
                for pool in {str(r["pool_id"]) for r in rows}:
                    p = pools[pool]
                    if p["status"] != "OPEN" and p["last_close_reason"] == "NOT_STARTED":
                        p["status"] = "OPEN"
                    for task in tasks.values():
                        if task["pool_id"] == pool and task["id"] not in work:
                            work[task["id"]] = plan_work(vendor, task["id"], p["_kind"], p["_n"](task),
                                                         task["overlap"], start=now, id_prefix=next_id()[:14])
            op = operation("TASK.BATCH_CREATE", pool_id=str(rows[0]["pool_id"]))
            if op_id:
                operations.pop(op["id"])
                op["id"] = op_id
                operations[op_id] = op
            operation_logs[op["id"]] = log
            return JSONResponse(op, status_code=202 if q.get("async_mode") == "true" else 201)

    @app.get("/api/v1/operations/{op_id}")
    def get_operation(op_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            return JSONResponse(operations[op_id]) if op_id in operations else err(404, "DOES_NOT_EXIST", "no op")

    @app.get("/api/v1/operations/{op_id}/log")
    def get_operation_log(op_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            if op_id not in operations:
                return err(404, "DOES_NOT_EXIST", "no op")
            return JSONResponse(operation_logs.get(op_id, []))

    @app.get("/api/v1/tasks")
    def find_tasks(request: Request, pool_id: str | None = None, id_gte: str | None = None,
                   id_lte: str | None = None, id_gt: str | None = None, limit: int = 50) -> JSONResponse:
        """Search tasks: ``items`` + ``has_more``, keyset by id (``id_gt``) as the SDK pages."""
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        with lock:
            rows = sorted((t for t in tasks.values() if (not pool_id or t["pool_id"] == pool_id)
                           and (id_gte is None or t["id"] >= id_gte) and (id_lte is None or t["id"] <= id_lte)
                           and (id_gt is None or t["id"] > id_gt)), key=lambda t: t["id"])
            return JSONResponse({"items": rows[:limit], "has_more": len(rows) > limit})

    @app.get("/api/v1/assignments")
    def find_assignments(request: Request, pool_id: str | None = None, status: str | None = None,
                         submitted_gte: str | None = None, limit: int = 50) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        now = time.time()
        wanted = set((status or "SUBMITTED,ACCEPTED,REJECTED").split(","))
        sort = request.query_params.get("sort", "id")
        with lock:
            rows = [assignment(w) for t in tasks.values() if not pool_id or t["pool_id"] == pool_id
                    for w in work.get(t["id"], []) if w.done(now)]
            rows = [a for a in rows if a["status"] in wanted and
                    (not submitted_gte or _ts(a["submitted"]) >= _ts(submitted_gte))]
            key = sort.lstrip("-").split(",")[0]
            rows.sort(key=lambda a: (a[key], a["id"]))
            page = rows[:limit]
            if page and vendor.take("duplicate"):
                page.append(dict(page[0]))
                vendor.counters["duplicates_sent"] += 1
            if page and vendor.take("malformed"):
                page.append({**page[-1], "id": "broken-" + page[-1]["id"], "solutions": [{"output_values": {}}]})
                vendor.counters["malformed_sent"] += 1
            return JSONResponse({"items": page, "has_more": len(rows) > limit})

    @app.put("/api/v1/webhook-subscriptions")
    async def subscribe(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "AUTHENTICATION_ERROR", "bad token")
        body = await request.json()
        with lock:
            items = {}
            for i, sub in enumerate(body):
                sub = {**sub, "id": str(uuid.uuid4()), "created": _iso(time.time())}
                hooks.append(sub)
                items[str(i)] = {k: v for k, v in sub.items() if k != "secret_key"}
            return JSONResponse({"items": items, "validation_errors": {}}, status_code=201)

    def tick() -> None:
        now = time.time()
        deliveries: list[tuple[str, str, list[dict[str, Any]]]] = []
        with lock:
            for hook in hooks:
                events = []
                for task in tasks.values():
                    if task["pool_id"] != str(hook.get("pool_id")):
                        continue
                    for w in work.get(task["id"], []):
                        key = f"{hook['id']}/{w.id}"
                        if hook.get("event_type") == "ASSIGNMENT_SUBMITTED" and w.done(now) and key not in sent:
                            sent.add(key)
                            events.append({"uuid": str(uuid.uuid4()), "event_time": _iso(w.due),
                                           "pool_id": task["pool_id"], "assignment_id": w.id,
                                           "type": "ASSIGNMENT_SUBMITTED"})
                if events:
                    deliveries.append((hook["webhook_url"], hook.get("secret_key") or "", events))
        for url, secret, events in deliveries:
            body = json.dumps({"events": events}).encode()
            vendor.post_callback(url, {"Toloka-Signature": sign_toloka(secret, body)} if secret else {}, body)

    app.state.vendor = vendor
    app.state.tick = tick
    return app
