"""A fake of Surge AI's API (``https://app.surgehq.ai/api``, the surface ``surge-api`` 1.5 calls).

Basic auth (key as user). ``POST /projects``; ``GET /projects?page`` (bare list, 100 per page);
``GET /projects/{id}``; ``PUT /projects/{id}/launch|pause|resume|cancel``;
``POST /projects/{id}/tasks/create_tasks {"tasks": [fields...], "launch": bool}`` (bare list back);
``GET /projects/{id}/tasks?page&per_page`` (bare list, ascending created_at); ``GET /tasks/{id}``.
A task carries ``responses[] = {id, data: {<question text>: answer}, completed_at, worker_id,
time_spent_in_secs}``. No idempotency key exists: creating twice creates twice.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work

__all__ = ["create_app"]

TO_OPTION = {"A": "Response A", "B": "Response B", "tie": "Tie", "up": "Good", "down": "Bad"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def create_app(vendor: FakeVendor | None = None) -> FastAPI:
    vendor = vendor or FakeVendor("surge", "surge-key", crowd=Crowd(prefix="surger-"))
    app = FastAPI(title="fake Surge")
    install_controls(app, vendor)
    projects: dict[str, dict[str, Any]] = {}
    tasks: dict[str, dict[str, Any]] = {}
    work: dict[str, list[Work]] = {}
    lock = threading.RLock()

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def authorized(request: Request) -> bool:
        value = request.headers.get("authorization", "")
        if value.startswith("Basic "):
            return base64.b64decode(value[6:]).decode().partition(":")[0] == vendor.api_key
        return value.rstrip(":") == vendor.api_key  # the documented "Authorization: <key>:" form

    def start_work(project: dict[str, Any], task: dict[str, Any]) -> None:
        if task["id"] in work:
            return
        meta = project["_meta"]
        work[task["id"]] = plan_work(vendor, task["id"], meta["kind"], meta["n_responses"](task),
                                     project["num_workers_per_task"], scale=meta["scale"])

    def task_json(task: dict[str, Any], now: float) -> dict[str, Any]:
        project = projects[task["project_id"]]
        question = project["questions"][0]["text"]
        responses = []
        for w in work.get(task["id"], []):
            if w.done(now):
                answer: Any = TO_OPTION.get(w.label, w.label)
                if project["_meta"]["kind"] == "ranking":
                    answer = [task["fields"][f"response_{c.lower()}"] for c in w.label.split(">")]
                responses.append({"id": w.id, "data": {question: answer}, "completed_at": _iso(w.due),
                                  "worker_id": w.rater, "time_spent_in_secs": round(w.due - w.created, 3)})
        status = "cancelled" if project["status"] == "cancelled" else (
            "completed" if len(responses) >= project["num_workers_per_task"] else "in_progress")
        return {"id": task["id"], "project_id": task["project_id"], "created_at": task["created_at"],
                "fields": task["fields"], "status": status, "is_complete": status == "completed",
                "responses": responses}

    def project_json(project: dict[str, Any]) -> dict[str, Any]:
        """Progress counters (``num_tasks``, ``num_tasks_completed``, ``num_responses``) are this fake's
        assumption of the project payload's names; the SDK passes unknown project keys through."""
        now = time.time()
        rows = [t for t in tasks.values() if t["project_id"] == project["id"]]
        counts = [sum(1 for w in work.get(t["id"], []) if w.done(now)) for t in rows]
        overlap = project["num_workers_per_task"]
        if rows and project["status"] == "in_progress" and all(c >= overlap for c in counts):
            project["status"] = "completed"
        return {**{k: v for k, v in project.items() if not k.startswith("_")}, "num_tasks": len(rows),
                "num_tasks_completed": sum(1 for c in counts if c >= overlap), "num_responses": sum(counts)}

    @app.post("/projects")
    async def create_project(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        body = await request.json()
        if not body.get("name"):
            return err(400, "name is required")
        questions = body.get("questions") or []
        if not questions:
            return err(400, "at least one question is required")
        kind = "ranking" if questions[0].get("type") == "ranking" else (body.get("tags") or ["pairwise"])[0]
        pid = str(uuid.uuid4())
        with lock:
            projects[pid] = {
                "id": pid, "name": body["name"], "status": "unlaunched", "created_at": _iso(time.time()),
                "num_workers_per_task": int(body.get("num_workers_per_task") or 1),
                "payment_per_response": body.get("payment_per_response"), "callback_url": body.get("callback_url"),
                "fields_template": body.get("fields_template"), "instructions": body.get("instructions"),
                "tags": body.get("tags") or [],
                "questions": [{"id": str(uuid.uuid4()), "required": True, "preexisting_annotations": None,
                               "require_tie_breaker": False, "shown_by_item_option_id": None,
                               "hidden_by_item_option_id": None, "holistic": False, **q} for q in questions],
                "_meta": {"kind": kind, "scale": len(questions[0].get("options") or []) or 5,
                          "n_responses": lambda t: sum(1 for k in t["fields"] if k.startswith("response_"))},
            }
            vendor.counters["projects_created"] += 1
            vendor.creations[f"project:{body['name']}"] += 1
            return JSONResponse(project_json(projects[pid]))

    @app.get("/projects")
    def list_projects(request: Request, page: int = 1) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        with lock:
            rows = [project_json(p) for p in projects.values()]
        return JSONResponse(rows[(page - 1) * 100: page * 100])

    @app.get("/projects/{pid}")
    def get_project(pid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        with lock:
            return JSONResponse(project_json(projects[pid])) if pid in projects else err(404, "Project not found")

    @app.put("/projects/{pid}/{action}")
    def transition(pid: str, action: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        with lock:
            project = projects.get(pid)
            if project is None:
                return err(404, "Project not found")
            allowed = {"launch": ("unlaunched",), "pause": ("in_progress",), "resume": ("paused",),
                       "cancel": ("unlaunched", "in_progress", "paused")}
            if action not in allowed:
                return err(404, "Not found")
            if project["status"] not in allowed[action]:
                return err(400, f"Cannot {action} a project that is {project['status']}")
            project["status"] = {"launch": "in_progress", "pause": "paused", "resume": "in_progress",
                                 "cancel": "cancelled"}[action]
            now = time.time()
            if action == "launch":
                for task in tasks.values():
                    if task["project_id"] == pid:
                        start_work(project, task)
            if action == "cancel":
                for task in tasks.values():
                    if task["project_id"] == pid:
                        for w in work.get(task["id"], []):
                            if not w.done(now):
                                w.withdrawn = True
                vendor.counters["projects_cancelled"] += 1
            return JSONResponse(project_json(project))

    @app.post("/projects/{pid}/tasks/create_tasks")
    async def create_tasks(pid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        body = await request.json()
        with lock:
            project = projects.get(pid)
            if project is None:
                return err(404, "Project not found")
            created = []
            for fields in body.get("tasks") or []:
                tid = str(uuid.uuid4())
                tasks[tid] = {"id": tid, "project_id": pid, "fields": fields, "created_at": _iso(time.time())}
                vendor.counters["tasks_created"] += 1
                vendor.creations[f"task:{fields.get('crowdbridge_item_id', tid)}@{pid}"] += 1
                if project["status"] == "in_progress":
                    start_work(project, tasks[tid])
                created.append(task_json(tasks[tid], time.time()))
            if body.get("launch") and project["status"] == "unlaunched":
                project["status"] = "in_progress"
                for task in tasks.values():
                    if task["project_id"] == pid:
                        start_work(project, task)
            return JSONResponse(created)

    @app.get("/projects/{pid}/tasks")
    def list_tasks(pid: str, request: Request, page: int = 1, per_page: int = 25) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        now = time.time()
        with lock:
            if pid not in projects:
                return err(404, "Project not found")
            rows = [t for t in tasks.values() if t["project_id"] == pid]
            page_rows = [task_json(t, now) for t in rows[(page - 1) * per_page: page * per_page]]
            done = [t for t in page_rows if t["responses"]]
            if done and vendor.take("duplicate"):
                done[0]["responses"].append(dict(done[0]["responses"][0]))
                vendor.counters["duplicates_sent"] += 1
            if done and vendor.take("malformed"):
                done[-1]["responses"].append({"id": "broken-" + done[-1]["responses"][0]["id"], "data": {},
                                              "completed_at": "not a time", "worker_id": None})
                vendor.counters["malformed_sent"] += 1
            return JSONResponse(page_rows)

    @app.get("/tasks/{tid}")
    def get_task(tid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid API key")
        with lock:
            return JSONResponse(task_json(tasks[tid], time.time())) if tid in tasks else err(404, "Task not found")

    app.state.vendor = vendor
    app.state.tick = None
    return app
