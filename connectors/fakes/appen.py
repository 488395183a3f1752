"""A fake of Appen's (Figure Eight / CrowdFlower) API v1 (``<url>/v1``), the surface :mod:`connectors.appen` uses.

Auth ``Authorization: Token token=<key>`` or ``?key=<key>`` (401 otherwise). ``GET/POST /v1/jobs.json``
(10 jobs per page, an empty list past the end); ``GET /v1/jobs/{id}.json``; ``GET /v1/jobs/{id}/ping.json``;
``POST /v1/jobs/{id}/upload.json`` (JSON lines; no idempotency: uploading twice makes two units);
``GET /v1/jobs/{id}/units.json?page`` (``{unit_id: data}``, 1000 per page, ``{}`` past the end);
``GET /v1/jobs/{id}/units/{unit}.json`` (``results.judgments[]``); ``POST /v1/jobs/{id}/orders.json``;
``GET|PUT /v1/jobs/{id}/pause|resume|cancel.json``. Each finalized unit sends a ``unit_complete``
webhook (form ``signal``, ``payload``, ``signature`` = sha1(payload + key)) to ``job.webhook_uri``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.appen import sign_appen
from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work

__all__ = ["create_app"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def create_app(vendor: FakeVendor | None = None) -> FastAPI:
    vendor = vendor or FakeVendor("appen", "appen-key", crowd=Crowd(prefix=""))
    app = FastAPI(title="fake Appen v1")
    install_controls(app, vendor, error_body=lambda status, msg: {"error": {"message": msg}})
    jobs: dict[int, dict[str, Any]] = {}
    units: dict[int, dict[str, Any]] = {}
    work: dict[int, list[Work]] = {}
    seq = {"job": 1_000_000, "unit": 5_000_000, "judgment": 9_000_000_000}
    ids: dict[str, int] = {}
    sent: set[int] = set()
    lock = threading.RLock()

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message}}, status_code=status)

    def authorized(request: Request) -> bool:
        return (request.headers.get("authorization") == f"Token token={vendor.api_key}"
                or request.query_params.get("key") == vendor.api_key)

    def judgment_id(w: Work) -> int:
        if w.id not in ids:
            seq["judgment"] += 1
            ids[w.id] = seq["judgment"]
        return ids[w.id]

    def unit_json(unit: dict[str, Any], now: float) -> dict[str, Any]:
        job = jobs[unit["job_id"]]
        done = [w for w in work.get(unit["id"], []) if w.done(now)]
        rows = [{"id": judgment_id(w), "unit_id": unit["id"], "job_id": job["id"], "worker_id": int(w.rater),
                 "started_at": _iso(w.created), "created_at": _iso(w.due), "data": {"preference": w.label},
                 "tainted": False, "golden": False, "missed": None, "rejected": None, "trust": 1.0,
                 "worker_trust": 0.9, "country": "USA", "external_type": "on_demand"} for w in done]
        if job["state"] == "canceled" and len(done) < job["judgments_per_unit"]:
            state = "canceled"
        elif len(done) >= job["judgments_per_unit"]:
            state = "finalized"
        else:
            state = "judging" if done else ("judgable" if job["state"] == "running" else "new")
        return {"id": unit["id"], "job_id": job["id"], "data": unit["data"], "state": state,
                "judgments_count": len(rows), "created_at": unit["created_at"], "updated_at": _iso(now),
                "results": {"judgments": rows}}

    def job_json(job: dict[str, Any], now: float) -> dict[str, Any]:
        mine = [u for u in units.values() if u["job_id"] == job["id"]]
        if job["state"] == "running" and mine and all(unit_json(u, now)["state"] == "finalized" for u in mine):
            job["state"] = "finished"
            job["completed_at"] = _iso(now)
        return {k: v for k, v in job.items() if not k.startswith("_")} | {"units_count": len(mine)}

    @app.get("/v1/jobs.json")
    def list_jobs(request: Request, page: int = 1) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        with lock:
            rows = sorted(jobs.values(), key=lambda j: j["id"])[(page - 1) * 10: page * 10]
            return JSONResponse([job_json(j, time.time()) for j in rows])

    @app.post("/v1/jobs.json")
    async def create_job(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        body = (await request.json()).get("job") or {}
        if not body.get("title") or not body.get("cml"):
            return err(422, "title and cml are required")
        with lock:
            seq["job"] += 1
            jid = seq["job"]
            jobs[jid] = {"id": jid, "title": body["title"], "instructions": body.get("instructions", ""),
                         "cml": body["cml"], "state": "unordered", "judgments_per_unit":
                         int(body.get("judgments_per_unit") or 3), "units_per_assignment":
                         int(body.get("units_per_assignment") or 5), "payment_cents": body.get("payment_cents", 10),
                         "webhook_uri": body.get("webhook_uri"), "tags": body.get("tags") or [],
                         "created_at": _iso(time.time()), "completed_at": None,
                         "_kind": (body.get("tags") or ["", "pairwise"])[-1]}
            vendor.creations[f"job:{body['title']}"] += 1
            return JSONResponse(job_json(jobs[jid], time.time()))

    def get(jid: int) -> dict[str, Any] | None:
        return jobs.get(jid)

    @app.get("/v1/jobs/{jid}.json")
    def show_job(jid: int, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        with lock:
            job = get(jid)
            return JSONResponse(job_json(job, time.time())) if job else err(404, "Job not found")

    @app.get("/v1/jobs/{jid}/ping.json")
    def ping(jid: int, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        now = time.time()
        with lock:
            job = get(jid)
            if job is None:
                return err(404, "Job not found")
            rows = [unit_json(u, now) for u in units.values() if u["job_id"] == jid]
            done = sum(r["judgments_count"] for r in rows)
            need = 0 if job["state"] == "canceled" else sum(max(0, job["judgments_per_unit"] - r["judgments_count"])
                                                            for r in rows)
            return JSONResponse({"all_units": len(rows), "all_judgments": done, "needed_judgments": need,
                                 "completed_units_estimate": sum(1 for r in rows if r["state"] == "finalized"),
                                 "golden_units": 0, "tainted_judgments": 0, "ordered_units": len(rows)})

    def start(job: dict[str, Any], now: float) -> None:
        for unit in units.values():
            if unit["job_id"] == job["id"] and unit["id"] not in work:
                n = sum(1 for k in unit["data"] if k.startswith("response_"))
                work[unit["id"]] = plan_work(vendor, str(unit["id"]), job["_kind"], n, job["judgments_per_unit"],
                                             start=now)

    @app.post("/v1/jobs/{jid}/upload.json")
    async def upload(jid: int, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        text = (await request.body()).decode()
        with lock:
            job = get(jid)
            if job is None:
                return err(404, "Job not found")
            try:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            except ValueError:
                return err(422, "upload is not JSON lines")
            for data in rows:
                seq["unit"] += 1
                units[seq["unit"]] = {"id": seq["unit"], "job_id": jid, "data": data, "created_at": _iso(time.time())}
                vendor.creations[f"unit:{data.get('crowdbridge_item_id')}@{jid}"] += 1
            if job["state"] == "running":
                start(job, time.time())
            return JSONResponse(job_json(job, time.time()))

    @app.get("/v1/jobs/{jid}/units.json")
    def list_units(jid: int, request: Request, page: int = 1) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        with lock:
            if get(jid) is None:
                return err(404, "Job not found")
            rows = sorted((u for u in units.values() if u["job_id"] == jid), key=lambda u: u["id"])
            return JSONResponse({str(u["id"]): u["data"] for u in rows[(page - 1) * 1000: page * 1000]})

    @app.get("/v1/jobs/{jid}/units/{uid}.json")
    def show_unit(jid: int, uid: int, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        with lock:
            unit = units.get(uid)
            if unit is None or unit["job_id"] != jid:
                return err(404, "Unit not found")
            body = unit_json(unit, time.time())
            rows = body["results"]["judgments"]
            if rows and vendor.take("duplicate"):
                rows.append(dict(rows[0]))
                vendor.counters["duplicates_sent"] += 1
            if rows and vendor.take("malformed"):
                rows.append({**rows[-1], "id": rows[-1]["id"] + 10**12, "worker_id": None, "data": {}})
                vendor.counters["malformed_sent"] += 1
            return JSONResponse(body)

    @app.post("/v1/jobs/{jid}/orders.json")
    async def order(jid: int, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        body = await request.json()
        with lock:
            job = get(jid)
            if job is None:
                return err(404, "Job not found")
            if not (body.get("debit") or {}).get("units_count"):
                return err(422, "debit[units_count] is required")
            if job["state"] != "unordered":
                return err(422, f"job is {job['state']}")
            job["state"] = "running"
            vendor.counters["orders"] += 1
            start(job, time.time())
            return JSONResponse({"id": jid, "type": "Debit", "job_id": jid, "meta": body}, status_code=202)

    @app.api_route("/v1/jobs/{jid}/{action}.json", methods=["GET", "PUT"])
    def transition(jid: int, action: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Unauthorized")
        with lock:
            job = get(jid)
            if job is None or action not in ("pause", "resume", "cancel"):
                return err(404, "Not found")
            now = time.time()
            job_json(job, now)
            if action == "cancel":
                if job["state"] in ("canceled", "finished"):
                    return err(422, f"job is already {job['state']}")
                job["state"] = "canceled"
                for unit in units.values():
                    if unit["job_id"] == jid:
                        for w in work.get(unit["id"], []):
                            if not w.done(now):
                                w.withdrawn = True
                vendor.counters["jobs_canceled"] += 1
            elif action == "pause" and job["state"] == "running":
                job["state"] = "paused"
            elif action == "resume" and job["state"] == "paused":
                job["state"] = "running"
            return JSONResponse({"success": {"message": f"Job {action}d"}})

    def tick() -> None:
        now = time.time()
        out: list[tuple[str, bytes]] = []
        with lock:
            for unit in units.values():
                job = jobs[unit["job_id"]]
                if unit["id"] in sent or not job.get("webhook_uri"):
                    continue
                body = unit_json(unit, now)
                if body["state"] == "finalized":
                    sent.add(unit["id"])
                    payload = json.dumps(body)
                    form = {"signal": "unit_complete", "payload": payload,
                            "signature": sign_appen(payload, vendor.api_key)}
                    out.append((job["webhook_uri"], urlencode(form).encode()))
        for url, form_body in out:
            vendor.post_callback(url, {"Content-Type": "application/x-www-form-urlencoded"}, form_body)

    app.state.vendor = vendor
    app.state.tick = tick
    return app
