"""A fake of Prolific's API (``<url>/api/v1``): AI Task Builder datasets/batches, studies, batch responses.

Auth ``Authorization: Token <token>`` (401 ``{"error": {...}}`` otherwise). Datasets
``POST /data-collection/datasets``, ``GET .../datasets/{id}/upload-url/{file}`` (a presigned ``PUT`` URL
on this server, under ``/_fake/s3/``: no token needed, none accepted in its place), ``GET .../status``.
Batches ``GET/POST /data-collection/batches``, ``PATCH/GET .../batches/{id}``, ``GET/POST
.../instructions``, ``POST .../setup`` (``PROCESSING`` then ``READY``), ``GET .../status``,
``GET .../responses?page&page_size`` -> ``{results, meta}``. Studies ``GET/POST /studies/``,
``GET /studies/{id}``, ``POST /studies/{id}/transition/`` (``PUBLISH``, ``PAUSE``, ``START``, ``STOP``).
Each place is one simulated participant who answers every task of the batch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work

__all__ = ["create_app"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _oid() -> str:
    return uuid.uuid4().hex[:24]  # Prolific ids look like Mongo ObjectIds


def create_app(vendor: FakeVendor | None = None) -> FastAPI:
    vendor = vendor or FakeVendor("prolific", "prolific-token", crowd=Crowd(prefix="pp"))
    app = FastAPI(title="fake Prolific")
    install_controls(app, vendor, error_body=lambda status, msg: {"error": {"status": status, "title": msg}})
    datasets: dict[str, dict[str, Any]] = {}
    batches: dict[str, dict[str, Any]] = {}
    studies: dict[str, dict[str, Any]] = {}
    work: dict[str, list[tuple[dict[str, Any], Work]]] = {}  # study id -> (datapoint, answer)
    lock = threading.RLock()
    api = "/api/v1"

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"status": status, "title": message}}, status_code=status)

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Token {vendor.api_key}"

    def pub(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    @app.post(api + "/data-collection/datasets")
    async def create_dataset(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        with lock:
            did = _oid()
            datasets[did] = {"id": did, "name": body.get("name"), "workspace_id": body.get("workspace_id"),
                             "status": "UNINITIALISED", "_rows": []}
            vendor.creations[f"dataset:{body.get('name')}"] += 0  # datasets hold data, not work: not counted
            return JSONResponse(pub(datasets[did]), status_code=201)

    @app.get(api + "/data-collection/datasets/{did}/upload-url/{filename}")
    def upload_url(did: str, filename: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        if did not in datasets:
            return err(404, "Dataset not found")
        sig = hashlib.sha256(f"{vendor.api_key}/{did}/{filename}".encode()).hexdigest()[:32]
        return JSONResponse({"upload_url": f"{request.base_url}_fake/s3/{did}/{filename}?X-Amz-Signature={sig}",
                             "expires_at": _iso(time.time() + 900), "http_method": "PUT", "dataset_id": did})

    @app.put("/_fake/s3/{did}/{filename}")
    async def presigned_put(did: str, filename: str, request: Request) -> JSONResponse:
        sig = hashlib.sha256(f"{vendor.api_key}/{did}/{filename}".encode()).hexdigest()[:32]
        if request.query_params.get("X-Amz-Signature") != sig or "authorization" in request.headers:
            return err(403, "SignatureDoesNotMatch")
        text = (await request.body()).decode()
        with lock:
            datasets[did]["_rows"] = list(csv.DictReader(io.StringIO(text)))
            datasets[did]["status"] = "READY"
        return JSONResponse({}, status_code=200)

    @app.get(api + "/data-collection/datasets/{did}/status")
    def dataset_status(did: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        return JSONResponse({"status": datasets[did]["status"]}) if did in datasets else err(404, "Not found")

    @app.get(api + "/data-collection/batches")
    def list_batches(request: Request, workspace_id: str | None = None) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            rows = [pub(b) for b in batches.values() if not workspace_id or b["workspace_id"] == workspace_id]
            return JSONResponse({"results": rows})

    @app.post(api + "/data-collection/batches")
    async def create_batch(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        if not body.get("name") or not body.get("workspace_id"):
            return err(400, "name and workspace_id are required")
        with lock:
            bid = _oid()
            batches[bid] = {"id": bid, "name": body["name"], "workspace_id": body["workspace_id"],
                            "dataset_id": body.get("dataset_id"), "task_details": body.get("task_details"),
                            "status": "UNINITIALISED", "created_at": _iso(time.time()), "_instructions": [],
                            "_tasks_per_group": 1, "_ready_at": None}
            vendor.creations[f"batch:{body['name']}"] += 1
            return JSONResponse(pub(batches[bid]), status_code=201)

    def batch_or_404(bid: str) -> dict[str, Any] | None:
        batch = batches.get(bid)
        if batch and batch["status"] == "PROCESSING" and batch["_ready_at"] <= time.time():
            batch["status"] = "READY"
        return batch

    @app.patch(api + "/data-collection/batches/{bid}")
    async def update_batch(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        with lock:
            batch = batch_or_404(bid)
            if batch is None:
                return err(404, "Batch not found")
            batch.update({k: v for k, v in body.items() if k in ("name", "dataset_id", "task_details")})
            return JSONResponse(pub(batch))

    @app.get(api + "/data-collection/batches/{bid}")
    def get_batch(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            batch = batch_or_404(bid)
            return JSONResponse(pub(batch)) if batch else err(404, "Batch not found")

    @app.get(api + "/data-collection/batches/{bid}/status")
    def batch_status(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            batch = batch_or_404(bid)
            return JSONResponse({"status": batch["status"]}) if batch else err(404, "Batch not found")

    @app.get(api + "/data-collection/batches/{bid}/instructions")
    def get_instructions(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            batch = batch_or_404(bid)
            return JSONResponse({"instructions": batch["_instructions"]}) if batch else err(404, "Batch not found")

    @app.post(api + "/data-collection/batches/{bid}/instructions")
    async def add_instructions(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        with lock:
            batch = batch_or_404(bid)
            if batch is None:
                return err(404, "Batch not found")
            for ins in body.get("instructions") or []:
                if ins.get("type") not in ("multiple_choice", "free_text", "multiple_choice_with_free_text"):
                    return err(400, f"unknown instruction type {ins.get('type')!r}")
                batch["_instructions"].append({**ins, "id": str(uuid.uuid4())})
            return JSONResponse({"instructions": batch["_instructions"]}, status_code=201)

    @app.post(api + "/data-collection/batches/{bid}/setup")
    async def setup(bid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        with lock:
            batch = batch_or_404(bid)
            if batch is None:
                return err(404, "Batch not found")
            dataset = datasets.get(str(body.get("dataset_id") or batch.get("dataset_id")))
            if dataset is None or dataset["status"] != "READY" or not batch["_instructions"]:
                return err(400, "the batch needs a READY dataset and instructions before setup")
            if batch["status"] == "UNINITIALISED":
                batch.update(status="PROCESSING", _ready_at=time.time() + 0.2,
                             _tasks_per_group=int(body.get("tasks_per_group") or 1))
            return JSONResponse(pub(batch), status_code=202)

    @app.get(api + "/studies/")
    def list_studies(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            return JSONResponse({"results": [study_json(s) for s in studies.values()]})

    @app.post(api + "/studies/")
    async def create_study(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        body = await request.json()
        missing = [k for k in ("name", "description", "total_available_places", "reward",
                               "estimated_completion_time") if body.get(k) in (None, "")]
        if missing:
            return err(400, f"missing {', '.join(missing)}")
        if body.get("data_collection_method") == "AI_TASK_BUILDER_BATCH":
            batch = batches.get(str(body.get("data_collection_id")))
            if batch is None or batch_or_404(batch["id"])["status"] != "READY":  # type: ignore[index]
                return err(400, "data_collection_id must be a READY AI Task Builder batch")
        with lock:
            sid = _oid()
            studies[sid] = {**body, "id": sid, "status": "UNPUBLISHED", "date_created": _iso(time.time()),
                            "places_taken": 0}
            vendor.creations[f"study:{body.get('internal_name')}"] += 1
            return JSONResponse(study_json(studies[sid]), status_code=201)

    def answers(study: dict[str, Any], now: float) -> list[tuple[dict[str, Any], Work]]:
        return [(d, w) for d, w in work.get(study["id"], []) if w.done(now)]

    def study_json(study: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        mine = work.get(study["id"], [])
        by_participant: dict[str, list[Work]] = {}
        for _, w in mine:
            by_participant.setdefault(w.rater, []).append(w)
        finished = sum(1 for ws in by_participant.values() if all(w.done(now) for w in ws))
        if study["status"] == "ACTIVE" and mine and finished >= int(study["total_available_places"]):
            study["status"] = "AWAITING REVIEW"
        return {**study, "number_of_submissions": finished, "places_taken": len(by_participant)}

    @app.get(api + "/studies/{sid}")
    def get_study(sid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        with lock:
            return JSONResponse(study_json(studies[sid])) if sid in studies else err(404, "Study not found")

    @app.post(api + "/studies/{sid}/transition/")
    async def transition(sid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        action = (await request.json()).get("action")
        with lock:
            study = studies.get(sid)
            if study is None:
                return err(404, "Study not found")
            study_json(study)
            now = time.time()
            allowed = {"PUBLISH": ("UNPUBLISHED",), "PAUSE": ("ACTIVE",), "START": ("PAUSED",),
                       "STOP": ("ACTIVE", "PAUSED", "SCHEDULED")}
            if action not in allowed or study["status"] not in allowed[action]:
                return err(400, f"cannot {action} a study that is {study['status']}")
            if action == "PUBLISH":
                study["status"] = "ACTIVE"
                batch = batches[str(study["data_collection_id"])]
                rows = datasets[str(batch["dataset_id"])]["_rows"]
                kind = "pairwise"
                ins = batch["_instructions"][0]
                if ins["type"] == "free_text":
                    kind = "ranking"
                elif {o["value"] for o in ins.get("options", [])} == {"up", "down"}:
                    kind = "binary"
                elif all(str(o["value"]).isdigit() for o in ins.get("options", [])):
                    kind = "rating"
                plan: list[tuple[dict[str, Any], Work]] = []
                places = int(study["total_available_places"])
                participants = vendor.crowd.raters_for(sid, places)  # the same people do every task
                for row in rows:
                    n = sum(1 for k, v in row.items() if k.startswith("response_") and v)
                    key = f"{sid}/{row['crowdbridge_item_id']}"
                    for person, w in zip(participants, plan_work(vendor, key, kind, n, places, start=now,
                                                                 scale=len(ins.get("options") or []) or 5)):
                        w.rater = person
                        plan.append((row, w))
                work[sid] = plan
            elif action == "STOP":
                study["status"] = "AWAITING REVIEW"
                for _, w in work.get(sid, []):
                    if not w.done(now):
                        w.withdrawn = True
                study["total_available_places"] = study["total_available_places"]
                vendor.counters["studies_stopped"] += 1
            else:
                study["status"] = {"PAUSE": "PAUSED", "START": "ACTIVE"}[action]
            return JSONResponse(study_json(study))

    @app.get(api + "/data-collection/batches/{bid}/responses")
    def responses(bid: str, request: Request, page: int = 1, page_size: int = 50) -> JSONResponse:
        if not authorized(request):
            return err(401, "Invalid token")
        now = time.time()
        with lock:
            batch = batch_or_404(bid)
            if batch is None:
                return err(404, "Batch not found")
            ins = batch["_instructions"][0] if batch["_instructions"] else {"id": "", "type": "multiple_choice"}
            rows = []
            for study in studies.values():
                if str(study.get("data_collection_id")) != bid:
                    continue
                for datapoint, w in answers(study, now):
                    rows.append({"id": w.id, "batch_id": bid, "study_id": study["id"], "participant_id": w.rater,
                                 "submission_id": hashlib.sha256(f"{study['id']}/{w.rater}".encode()).hexdigest()[:24],
                                 "task_id": hashlib.sha256(datapoint["crowdbridge_item_id"].encode()).hexdigest()[:24],
                                 "datapoint": datapoint, "started_at": _iso(w.created), "created_at": _iso(w.due),
                                 "response": {"instruction_id": ins["id"], "type": ins["type"],
                                              "answer": [{"value": w.label}]}})
            rows.sort(key=lambda r: (r["created_at"], r["id"]))
            page_rows = rows[(page - 1) * page_size: page * page_size]
            if page_rows and vendor.take("duplicate"):
                page_rows.append(dict(page_rows[0]))
                vendor.counters["duplicates_sent"] += 1
            if page_rows and vendor.take("malformed"):
                page_rows.append({**page_rows[-1], "id": "broken-" + page_rows[-1]["id"], "response": {}})
                vendor.counters["malformed_sent"] += 1
            return JSONResponse({"results": page_rows, "meta": {"count": len(rows), "page": page,
                                                                "page_size": page_size,
                                                                "tasks_per_group": batch["_tasks_per_group"]}})

    app.state.vendor = vendor
    app.state.tick = None
    return app
