"""A fake of Scale AI's REST v1 API (the surface ``scaleapi`` 2.18 calls with ``api_instance_url``).

- Auth: HTTP Basic, API key as user, empty password; else 401 ``{"error": ...}``.
- ``POST /v1/batches {project, name, callback, ...}`` -> batch ``{name, project, status: "staging"}``;
  a taken name -> 409. ``GET /v1/batches/{name}``; ``POST /v1/batches/{name}/finalize`` ->
  ``in_progress``; ``GET /v1/batches/{name}/status`` -> ``{status, pending, completed, canceled}``.
- ``POST /v1/task/{type}`` (categorization here) with ``unique_id`` -> task; a taken ``unique_id`` -> 409.
- ``GET /v1/task/{id}``; ``POST /v1/task/{id}/cancel`` (pending only; completed -> 409 "already completed").
- ``GET /v1/tasks?project|batch|status|unique_id|completed_after|updated_after|limit<=100|next_token``
  -> ``{docs, total, limit, has_more, next_token}``.
- One answer per task (Scale's QA'd consensus): ``response: {"category": ...}``, no rater identity.
- Callbacks: on completion, ``POST callback_url {task, response, task_id}`` with the static header
  ``scale-callback-auth: <callback key>``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from connectors.fakes.common import Crowd, FakeVendor, canonical_answer, install_controls

__all__ = ["create_app"]

CANONICAL_TO_CATEGORY = {"A": "Response A", "B": "Response B", "tie": "Tie", "up": "Good", "down": "Bad"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(value: str) -> float:
    text = value.replace(" ", "T").replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def create_app(vendor: FakeVendor | None = None, *, callback_key: str = "scale-callback-key"):  # type: ignore[no-untyped-def]
    vendor = vendor or FakeVendor("scale", "live_test_key", crowd=Crowd(prefix="scale-qa-"))
    app = FastAPI(title="fake Scale v1")
    install_controls(app, vendor, error_body=lambda status, msg: {"status_code": status, "error": msg})
    batches: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any]] = {}  # task_id -> task (insertion ordered)
    by_unique: dict[str, str] = {}
    lock = threading.RLock()

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"status_code": status, "error": message}, status_code=status)

    def authorized(request: Request) -> bool:
        value = request.headers.get("authorization", "")
        if not value.startswith("Basic "):
            return False
        user, _, _ = base64.b64decode(value[6:]).decode().partition(":")
        return user == vendor.api_key

    def refresh(task: dict[str, Any], now: float) -> None:
        if task["status"] == "pending" and task["_due"] <= now and task["_finalized"]():
            category = canonical_answer(task["_kind"], 2, task["task_id"], "scale-consensus",
                                        len(task["params"]["categories"]))
            category = CANONICAL_TO_CATEGORY.get(category, category)
            task.update(status="completed", completed_at=_iso(task["_due"]), updated_at=_iso(task["_due"]),
                        response={"category": category})

    def public(task: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in task.items() if not k.startswith("_")}

    @app.post("/v1/batches")
    async def create_batch(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        body = await request.json()
        name, project = body.get("name"), body.get("project")
        if not name or not project:
            return err(400, "project and name are required")
        with lock:
            vendor.counters["batch_create_requests"] += 1
            if name in batches:
                return err(409, f"Batch with name {name} already exists")
            batches[name] = {"name": name, "project": project, "status": "staging",
                             "callback": body.get("callback") or "", "created_at": _iso(time.time()),
                             "metadata": body.get("metadata") or {}}
            vendor.counters["batches_created"] += 1
            vendor.creations[f"batch:{name}"] += 1
            return JSONResponse(batches[name])

    @app.get("/v1/batches/{name}")
    def get_batch(name: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        with lock:
            return JSONResponse(batches[name]) if name in batches else err(404, f"no batch {name}")

    @app.post("/v1/batches/{name}/finalize")
    def finalize(name: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        with lock:
            if name not in batches:
                return err(404, f"no batch {name}")
            if batches[name]["status"] == "staging":
                batches[name]["status"] = "in_progress"
                batches[name]["_finalized_at"] = time.time()
                for task in tasks.values():  # work starts when the batch is finalized
                    if task["batch"] == name:
                        task["_due"] = vendor.crowd.due(time.time(), task["task_id"], "scale-consensus")
            return JSONResponse({k: v for k, v in batches[name].items() if not k.startswith("_")})

    @app.get("/v1/batches/{name}/status")
    def batch_status(name: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        now = time.time()
        with lock:
            if name not in batches:
                return err(404, f"no batch {name}")
            counts: dict[str, int] = {}
            for task in tasks.values():
                if task["batch"] == name:
                    refresh(task, now)
                    counts[task["status"]] = counts.get(task["status"], 0) + 1
            batch = batches[name]
            if batch["status"] == "in_progress" and counts and not counts.get("pending"):
                batch["status"] = "completed"
            return JSONResponse({"status": batch["status"], **counts})

    @app.post("/v1/task/{task_type}")
    async def create_task(task_type: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        body = await request.json()
        if task_type != "categorization":
            return err(400, f"task type {task_type} is not enabled for this fake")
        if not isinstance(body.get("categories"), list) or len(body["categories"]) < 2:
            return err(400, "categories must list at least two choices")
        batch_name = body.get("batch")
        unique_id = body.get("unique_id")
        with lock:
            vendor.counters["task_create_requests"] += 1
            if batch_name and batch_name not in batches:
                return err(400, f"batch {batch_name} does not exist")
            if batch_name and batches[batch_name]["status"] != "staging":
                return err(400, f"batch {batch_name} is already finalized")
            if unique_id and unique_id in by_unique:
                return err(409, f"A task with unique_id {unique_id} already exists")
            task_id = uuid.uuid4().hex[:24]
            now = time.time()
            batch = batches.get(batch_name or "")
            kind = (body.get("metadata") or {}).get("kind", "pairwise")
            task = {"task_id": task_id, "type": task_type, "status": "pending", "created_at": _iso(now),
                    "updated_at": _iso(now), "completed_at": None, "callback_url": body.get("callback_url") or "",
                    "unique_id": unique_id, "batch": batch_name, "project": body.get("project"),
                    "metadata": body.get("metadata") or {}, "instruction": body.get("instruction", ""),
                    "params": {"attachment": body.get("attachment"), "attachment_type": body.get("attachment_type"),
                               "categories": body["categories"]},
                    "callback_succeeded": None, "_kind": kind, "_sent": False,
                    "_due": float("inf") if batch is not None else vendor.crowd.due(now, task_id, "scale-consensus"),
                    "_finalized": (lambda b=batch: b is None or b["status"] != "staging")}
            tasks[task_id] = task
            if unique_id:
                by_unique[unique_id] = task_id
                vendor.creations[f"task:{unique_id}"] += 1
            vendor.counters["tasks_created"] += 1
            return JSONResponse(public(task))

    @app.get("/v1/task/{task_id}")
    def get_task(task_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        with lock:
            if task_id not in tasks:
                return err(404, f"no task {task_id}")
            refresh(tasks[task_id], time.time())
            return JSONResponse(public(tasks[task_id]))

    @app.post("/v1/task/{task_id}/cancel")
    def cancel_task(task_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        with lock:
            task = tasks.get(task_id)
            if task is None:
                return err(404, f"no task {task_id}")
            refresh(task, time.time())
            if task["status"] == "completed":
                return err(409, "Task is already completed and cannot be canceled")
            if task["status"] == "pending":
                task.update(status="canceled", updated_at=_iso(time.time()))
                vendor.counters["tasks_canceled"] += 1
            if request.query_params.get("clear_unique_id") == "true" and task.get("unique_id"):
                by_unique.pop(task["unique_id"], None)
                task["unique_id"] = None
            return JSONResponse(public(task))

    @app.get("/v1/tasks")
    def list_tasks(request: Request, project: str | None = None, batch: str | None = None,
                   status: str | None = None, unique_id: list[str] | None = Query(None),
                   completed_after: str | None = None, updated_after: str | None = None,
                   limit: int = Query(100, ge=1, le=100), next_token: str | None = None) -> JSONResponse:
        if not authorized(request):
            return err(401, "Please provide a valid API key")
        now = time.time()
        with lock:
            rows = []
            for task in tasks.values():
                refresh(task, now)
                if project and task["project"] != project or batch and task["batch"] != batch:
                    continue
                if status and task["status"] != status or unique_id and task["unique_id"] not in unique_id:
                    continue
                if completed_after and (not task["completed_at"] or _parse(task["completed_at"]) < _parse(
                        completed_after)):
                    continue
                if updated_after and _parse(task["updated_at"]) < _parse(updated_after):
                    continue
                rows.append(task)
            rows.sort(key=lambda t: (t["completed_at"] or t["updated_at"], t["task_id"]))
            start = int(next_token or 0)
            page = [public(t) for t in rows[start:start + limit]]
            if page and vendor.take("duplicate"):
                page.append(page[0])
                vendor.counters["duplicates_sent"] += 1
            if page and vendor.take("malformed"):
                bad = dict(page[-1], task_id="broken-" + page[-1]["task_id"], response={"category": None})
                page.append(bad)
                vendor.counters["malformed_sent"] += 1
            more = start + limit < len(rows)
            return JSONResponse({"docs": page, "total": len(rows), "limit": limit, "offset": start,
                                 "has_more": more, "next_token": str(start + limit) if more else None})

    def tick() -> None:
        now = time.time()
        due = []
        with lock:
            for task in tasks.values():
                refresh(task, now)
                if task["status"] == "completed" and not task["_sent"] and task["callback_url"]:
                    task["_sent"] = True
                    due.append(public(task))
        for task in due:
            body = json.dumps({"task": task, "response": task["response"], "task_id": task["task_id"]}).encode()
            vendor.post_callback(task["callback_url"], {"scale-callback-auth": callback_key}, body)

    app.state.tick = tick
    app.state.vendor = vendor
    return app
