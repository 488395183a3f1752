"""A fake of argilla-server 2.x's REST API (``/api/v1``), the surface :mod:`connectors.argilla` and the
``argilla`` SDK's dataset/record calls use (the real server needs Elasticsearch, see apis.md).

Auth ``X-Argilla-Api-Key`` (401 ``{"detail": ...}`` otherwise). ``GET /me``, ``GET /me/workspaces``,
``GET /me/datasets``, ``POST /datasets`` (409 on a taken name in a workspace),
``GET/PATCH/DELETE /datasets/{id}``, ``GET/POST /datasets/{id}/fields|questions``, ``PUT /datasets/{id}/publish``,
``GET /datasets/{id}/progress``, ``PUT /datasets/{id}/records/bulk`` (upsert by ``external_id``, else ``id``; an
existing record keeps its fields, only ``metadata`` is replaced; a new one's fields are validated, 422;
-> ``{items, updated_item_ids}``), ``GET /datasets/{id}/records?offset&limit&include=responses`` (``include``
may repeat) -> ``{items, total}``, ``DELETE /datasets/{id}/records?ids=``, ``POST /webhooks``.
Responses are ``{id, user_id, status: submitted, values: {question: {value}}, inserted_at, updated_at}``; a
record becomes ``completed`` at ``distribution.min_submitted`` submitted responses. Webhooks are signed
the Standard Webhooks way.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work
from connectors.webhooks import sign_standard_webhook

__all__ = ["create_app"]

WORKSPACE = "crowdbridge"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def create_app(vendor: FakeVendor | None = None, *, workspace: str = WORKSPACE) -> FastAPI:
    vendor = vendor or FakeVendor("argilla", "argilla.apikey", crowd=Crowd(prefix=""))
    app = FastAPI(title="fake Argilla")
    install_controls(app, vendor, error_body=lambda status, msg: {"detail": msg})
    me = {"id": str(uuid.uuid4()), "username": "owner", "role": "owner", "first_name": "Owner", "last_name": None,
          "api_key": vendor.api_key, "inserted_at": _iso(time.time()), "updated_at": _iso(time.time())}
    workspaces = {str(uuid.uuid4()): workspace}
    raters = {r: str(uuid.uuid5(uuid.NAMESPACE_URL, f"argilla-user/{r}")) for r in
              (f"{vendor.crowd.prefix}{i}" for i in range(vendor.crowd.n_raters))}
    datasets: dict[str, dict[str, Any]] = {}
    records: dict[str, dict[str, Any]] = {}
    work: dict[str, list[Work]] = {}
    hooks: list[dict[str, Any]] = []
    sent: set[str] = set()
    lock = threading.RLock()
    api = "/api/v1"

    def err(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    def authorized(request: Request) -> bool:
        return request.headers.get("x-argilla-api-key") == vendor.api_key

    def pub(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_")}

    def value_of(dataset: dict[str, Any], label: str) -> Any:
        kind = dataset["_questions"][0]["settings"]["type"]
        if kind == "ranking":
            return [{"value": v, "rank": i + 1} for i, v in enumerate(label.split(">"))]
        if kind == "rating":
            return int(label)
        return label

    def record_json(record: dict[str, Any], now: float, with_responses: bool) -> dict[str, Any]:
        dataset = datasets[record["dataset_id"]]
        done = [w for w in work.get(record["id"], []) if w.done(now)]
        need = int((dataset.get("distribution") or {}).get("min_submitted") or 1)
        out = {**pub(record), "status": "completed" if len(done) >= need else "pending",
               "updated_at": _iso(max([record["_ts"], *(w.due for w in done)]))}
        if with_responses:
            out["responses"] = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, w.id)), "user_id": raters.get(
                w.rater, w.rater), "status": "submitted", "values": {"preference": {"value": value_of(dataset, w.label)}},
                "record_id": record["id"], "inserted_at": _iso(w.created), "updated_at": _iso(w.due)} for w in done]
        return out

    @app.get(api + "/me")
    def get_me(request: Request) -> JSONResponse:
        return JSONResponse(me) if authorized(request) else err(401, "Could not validate credentials")

    @app.get(api + "/me/workspaces")
    def my_workspaces(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        return JSONResponse({"items": [{"id": k, "name": v, "inserted_at": me["inserted_at"],
                                        "updated_at": me["inserted_at"]} for k, v in workspaces.items()]})

    @app.get(api + "/workspaces/{wid}")
    def get_workspace(wid: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        if wid not in workspaces:
            return err(404, "Workspace not found")
        return JSONResponse({"id": wid, "name": workspaces[wid], "inserted_at": me["inserted_at"],
                             "updated_at": me["inserted_at"]})

    @app.get(api + "/me/datasets")
    def my_datasets(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        with lock:
            return JSONResponse({"items": [pub(d) for d in datasets.values()]})

    @app.post(api + "/datasets")
    async def create_dataset(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        body = await request.json()
        with lock:
            if str(body.get("workspace_id")) not in workspaces:
                return err(422, "workspace_id does not exist")
            if any(d["name"] == body.get("name") and d["workspace_id"] == body["workspace_id"]
                   for d in datasets.values()):
                return err(409, f"Dataset with name `{body.get('name')}` already exists for workspace")
            did = str(uuid.uuid4())
            now = _iso(time.time())
            datasets[did] = {"id": did, "name": body["name"], "guidelines": body.get("guidelines"),
                             "allow_extra_metadata": body.get("allow_extra_metadata", True), "status": "draft",
                             "distribution": body.get("distribution") or {"strategy": "overlap", "min_submitted": 1},
                             "metadata": None, "workspace_id": body["workspace_id"], "last_activity_at": now,
                             "inserted_at": now, "updated_at": now, "_fields": [], "_questions": []}
            vendor.creations[f"dataset:{body['name']}"] += 1
            return JSONResponse(pub(datasets[did]), status_code=201)

    @app.get(api + "/datasets/{did}")
    def get_dataset(did: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        return JSONResponse(pub(datasets[did])) if did in datasets else err(404, f"Dataset with id `{did}` not found")

    @app.patch(api + "/datasets/{did}")
    async def update_dataset(did: str, request: Request) -> JSONResponse:
        """``DatasetUpdate``: only name, guidelines, allow_extra_metadata, distribution and metadata change
        (other keys, e.g. the SDK's ``id``/``status``, are ignored); 2.8's update validator checks nothing
        else (record statuses follow a new ``min_submitted``, computed here on read)."""
        if not authorized(request):
            return err(401, "Could not validate credentials")
        body = await request.json()
        with lock:
            dataset = datasets.get(did)
            if dataset is None:
                return err(404, f"Dataset with id `{did}` not found")
            for key in ("name", "guidelines", "allow_extra_metadata", "distribution", "metadata"):
                if key in body and (body[key] is not None or key in ("guidelines", "metadata")):
                    dataset[key] = body[key]
            dataset["updated_at"] = _iso(time.time())
            return JSONResponse(pub(dataset))

    @app.delete(api + "/datasets/{did}")
    def delete_dataset(did: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        with lock:
            dataset = datasets.pop(did, None)
            if dataset is None:
                return err(404, f"Dataset with id `{did}` not found")
            for rid in [rid for rid, r in records.items() if r["dataset_id"] == did]:
                del records[rid]
                work.pop(rid, None)
            vendor.counters["datasets_deleted"] += 1
            return JSONResponse(pub(dataset))

    @app.get(api + "/datasets/{did}/{part}")
    def list_parts(did: str, part: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        if did not in datasets:
            return err(404, f"Dataset with id `{did}` not found")
        if part == "records":  # (this route is matched first)
            q = request.query_params
            return list_records(did, request, int(q.get("offset", 0)), int(q.get("limit", 50)),
                                ",".join(q.getlist("include")))
        if part in ("fields", "questions"):
            return JSONResponse({"items": datasets[did][f"_{part}"]})
        if part in ("vectors-settings", "metadata-properties"):
            return JSONResponse({"items": []})
        if part == "progress":
            now = time.time()
            with lock:
                rows = [record_json(r, now, False) for r in records.values() if r["dataset_id"] == did]
            done = sum(1 for r in rows if r["status"] == "completed")
            return JSONResponse({"total": len(rows), "completed": done, "pending": len(rows) - done})
        return err(404, "Not found")

    @app.get(api + "/me/datasets/{did}/metadata-properties")
    def my_metadata(did: str, request: Request) -> JSONResponse:
        return JSONResponse({"items": []}) if authorized(request) else err(401, "Could not validate credentials")

    @app.post(api + "/datasets/{did}/{part}")
    async def add_part(did: str, part: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        body = await request.json()
        with lock:
            dataset = datasets.get(did)
            if dataset is None or part not in ("fields", "questions"):
                return err(404, "Not found")
            if dataset["status"] == "ready":
                return err(422, f"{part} cannot be added to a published dataset")
            if any(x["name"] == body.get("name") for x in dataset[f"_{part}"]):
                return err(409, f"`{body.get('name')}` already exists")
            now = _iso(time.time())
            row = {**body, "id": str(uuid.uuid4()), "dataset_id": did, "inserted_at": now, "updated_at": now}
            dataset[f"_{part}"].append(row)
            return JSONResponse(row, status_code=201)

    @app.put(api + "/datasets/{did}/publish")
    def publish(did: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        with lock:
            dataset = datasets.get(did)
            if dataset is None:
                return err(404, "Not found")
            if not dataset["_fields"] or not dataset["_questions"]:
                return err(422, "Dataset cannot be published without fields and questions")
            dataset["status"] = "ready"
            return JSONResponse(pub(dataset))

    @app.put(api + "/datasets/{did}/records/bulk")
    async def bulk(did: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        body = await request.json()
        with lock:
            dataset = datasets.get(did)
            if dataset is None:
                return err(404, "Not found")
            if dataset["status"] != "ready":
                return err(422, "Records cannot be created for a non published dataset")
            now = time.time()
            items = body.get("items") or []
            mine = {rid: r for rid, r in records.items() if r["dataset_id"] == did}
            by_external = {str(r["external_id"]): r for r in mine.values() if r["external_id"] is not None}
            # an item is an update when its external_id (else its id) names a record of this dataset
            found = [by_external.get(str(item.get("external_id"))) if item.get("external_id") is not None
                     else mine.get(str(item.get("id"))) for item in items]
            names = {f["name"] for f in dataset["_fields"]}
            for idx, (item, record) in enumerate(zip(items, found)):
                if record is not None:
                    continue  # RecordUpdateValidator: fields aren't updated, so aren't checked
                fields = item.get("fields") or {}
                missing = [f["name"] for f in dataset["_fields"] if f.get("required") and fields.get(
                    f["name"]) is None]
                extra = [k for k in fields if k not in names]
                if missing or extra:
                    why = (f"missing required value for field: {missing[0]!r}" if missing else
                           f"found fields values for non configured fields: {extra}")
                    return err(422, f"record at position {idx} is not valid because {why}")
            out, updated = [], []
            for item, record in zip(items, found):
                if record is None:
                    rid = str(uuid.uuid4())
                    record = {"id": rid, "dataset_id": did, "external_id": item.get("external_id"),
                              "fields": item.get("fields") or {}, "metadata": item.get("metadata"),
                              "inserted_at": _iso(now), "_ts": now}
                    records[rid] = record
                    if record["external_id"] is not None:
                        by_external[str(record["external_id"])] = record
                    vendor.creations[f"record:{item.get('external_id')}@{did}"] += 1
                    n = sum(1 for k in record["fields"] if k.startswith("response_"))
                    kind = {"ranking": "ranking", "rating": "rating"}.get(
                        dataset["_questions"][0]["settings"]["type"], "pairwise")
                    options = {o.get("value") for o in dataset["_questions"][0]["settings"].get("options", [])}
                    kind = "binary" if options == {"up", "down"} else kind
                    work[rid] = plan_work(vendor, rid, kind, n, int(dataset["distribution"]["min_submitted"]),
                                          start=now, scale=len(options) or 5)
                else:  # as argilla-server's UpsertRecordsBulk: an existing record keeps its fields; only
                    # metadata is replaced, and only when the item carries it
                    updated.append(record["id"])
                    vendor.counters["records_updated"] += 1
                    if "metadata" in item:
                        record["metadata"] = item["metadata"]
                out.append(record_json(record, now, False))
            return JSONResponse({"items": out, "updated_item_ids": list(dict.fromkeys(updated))})

    @app.get(api + "/datasets/{did}/records")
    def list_records(did: str, request: Request, offset: int = 0, limit: int = 50,
                     include: str | None = None) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        if limit > 1000:
            return err(422, "limit must be <= 1000")
        now = time.time()
        with lock:
            if did not in datasets:
                return err(404, "Not found")
            # by inserted_at; a bulk's records tie and keep their order in it (a stable sort)
            rows = sorted((r for r in records.values() if r["dataset_id"] == did), key=lambda r: r["_ts"])
            wanted = {part.split(":")[0] for part in (include or "").split(",")}  # include=responses&include=..
            page = [record_json(r, now, "responses" in wanted) for r in rows[offset: offset + limit]]
            if "suggestions" in wanted:  # the fake never holds suggestions, but says so as the server does
                page = [{**r, "suggestions": []} for r in page]
            answered = [r for r in page if r.get("responses")]
            if answered and vendor.take("duplicate"):
                answered[0]["responses"].append(dict(answered[0]["responses"][0]))
                vendor.counters["duplicates_sent"] += 1
            if answered and vendor.take("malformed"):
                answered[-1]["responses"].append({**answered[-1]["responses"][0], "id": str(uuid.uuid4()),
                                                  "values": {"preference": {}}})
                vendor.counters["malformed_sent"] += 1
            return JSONResponse({"items": page, "total": len(rows)})

    @app.delete(api + "/datasets/{did}/records")
    def delete_records(did: str, request: Request, ids: str = "") -> Response:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        with lock:
            for rid in filter(None, ids.split(",")):
                if rid in records and records[rid]["dataset_id"] == did:
                    del records[rid]
                    work.pop(rid, None)
                    vendor.counters["records_deleted"] += 1
        return Response(status_code=204)

    @app.post(api + "/webhooks")
    async def create_webhook(request: Request) -> JSONResponse:
        if not authorized(request):
            return err(401, "Could not validate credentials")
        body = await request.json()
        hook = {"id": str(uuid.uuid4()), "url": body["url"], "events": body.get("events") or [], "enabled": True,
                "description": body.get("description"), "secret": "whsec_" + base64.b64encode(uuid.uuid4().bytes).decode(),
                "inserted_at": _iso(time.time()), "updated_at": _iso(time.time())}
        with lock:
            hooks.append(hook)
        return JSONResponse(hook, status_code=201)

    def tick() -> None:
        now = time.time()
        out: list[tuple[str, str, bytes]] = []
        with lock:
            for hook in hooks:
                if "response.created" not in hook["events"]:
                    continue
                for record in records.values():
                    for response in record_json(record, now, True)["responses"]:
                        key = f"{hook['id']}/{response['id']}"
                        if key in sent:
                            continue
                        sent.add(key)
                        event = {"type": "response.created", "version": 1, "timestamp": _iso(now), "data": {
                            **response, "record": {**pub(record), "dataset": {"id": record["dataset_id"]}}}}
                        out.append((hook["url"], hook["secret"], json.dumps(event).encode()))
        for url, secret, body in out:
            vendor.post_callback(url, sign_standard_webhook(secret, f"msg_{uuid.uuid4().hex}", body), body)

    app.state.vendor = vendor
    app.state.tick = tick
    return app
