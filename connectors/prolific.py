"""Prolific, through AI Task Builder batches: participants judge our items inside Prolific, per-rater answers.

Wire (``https://api.prolific.com/api/v1``, ``Authorization: Token <token>``; docs in apis.md):

* submit, in an order that makes a retry safe (Prolific has no idempotency key): find or create the
  AI Task Builder batch named ``crowdbridge <idempotency key>`` (``GET/POST /data-collection/batches``);
  if it has no dataset yet: create one (``POST /data-collection/datasets``), upload our items as CSV
  to the presigned ``upload_url`` (``GET .../datasets/{id}/upload-url/{file}``, a plain ``PUT`` that
  carries no Prolific token), wait for ``READY``, attach it (``PATCH /data-collection/batches/{id}``);
  add the instructions (``POST .../batches/{id}/instructions``) and set the batch up
  (``POST .../batches/{id}/setup``, one group holding every task) unless already done; then find or
  create the study whose ``internal_name`` is our key (``data_collection_method: AI_TASK_BUILDER_BATCH``,
  ``total_available_places`` = raters, ``reward`` in cents) and ``PUBLISH`` it.
  ``vendor_batch_id`` is ``<batch id>/<study id>``.
* poll: ``GET /studies/{id}`` (``status``, ``total_available_places``, ``number_of_submissions``); a study
  that ended (``AWAITING REVIEW`` / ``COMPLETED``) with fewer submissions than places was stopped.
* fetch: ``GET /data-collection/batches/{id}/responses?page&page_size`` -> ``{results, meta}``; one record
  per participant per task: ``participant_id``, ``task_id``, ``datapoint`` (our CSV row),
  ``response.answer[].value``, ``created_at``. The record's field names beyond ``results``/``meta`` and the
  page parameters are this module's reading of the docs (the schema page was truncated), not verified.
* webhooks: ``X-Prolific-Request-Signature`` (base64 HMAC-SHA256 of timestamp + body, ``webhook_secret``)
  and ``X-Prolific-Request-Timestamp``; ``X-Event-ID`` de-duplicates. Hooks need a public https target.
* cancel: ``POST /studies/{id}/transition/`` ``{"action": "STOP"}`` while the study runs.
* cost: the study's ``reward`` (cents per participant) spread over the tasks in a group.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    JudgmentKind,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    WebhookEvent,
    response_letter,
)
from connectors.errors import VendorRejected, VendorUnavailable, WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import dig, decode_cursor, encode_cursor, malformed, option_labels, parse_time
from connectors.webhooks import header, verify_prolific

__all__ = ["ProlificConnector"]

QUESTION = "Which response is better?"


class ProlificConnector:
    name: ClassVar[str] = "prolific"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=True, idempotent_submit=False, cancel=True, cost=True)

    def __init__(self, client: httpx.Client, uploads: httpx.Client, *, workspace_id: str,
                 webhook_secret: str | None = None, page_size: int = 100, ready_timeout_s: float = 60.0) -> None:
        self._client = client
        self._uploads = uploads  # presigned URLs: no Prolific token goes to the storage host
        self._workspace = workspace_id
        self._secret = webhook_secret
        self._page_size = page_size
        self._ready_timeout = ready_timeout_s

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> ProlificConnector:
        timeout = float(options.get("timeout_s", 30.0))
        client = build_client(options.get("base_url") or "https://api.prolific.com/api/v1",
                              headers={"Authorization": f"Token {options.get('api_key') or ''}"}, timeout=timeout,
                              transport=transport)
        uploads = build_client("", timeout=timeout, transport=transport)
        return cls(client, uploads, workspace_id=str(options.get("workspace_id", "crowdbridge")),
                   webhook_secret=options.get("webhook_secret"), page_size=int(options.get("page_size", 100)),
                   ready_timeout_s=float(options.get("ready_timeout_s", 60)))

    def _call(self, method: str, url: str, batch_id: str | None = None, **kwargs: Any) -> httpx.Response:
        return request(self._client, method, url, vendor=self.name, batch_id=batch_id, **kwargs)

    def _wait_ready(self, url: str, batch_id: str) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while True:
            status = self._call("GET", url, batch_id).json().get("status")
            if status == "READY":
                return
            if status == "ERROR":
                raise VendorRejected(f"prolific: {url} reports ERROR", vendor=self.name, batch_id=batch_id)
            if time.monotonic() > deadline:
                raise VendorUnavailable(f"prolific: {url} not READY in time", vendor=self.name, batch_id=batch_id)
            time.sleep(0.2)

    def _find(self, url: str, key: str, value: str) -> dict[str, Any] | None:
        for row in self._call("GET", url, params={"workspace_id": self._workspace}).json().get("results") or []:
            if row.get(key) == value:
                return row
        return None

    def _csv(self, req: BatchRequest) -> bytes:
        n = max(len(t.responses) for t in req.tasks)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["crowdbridge_item_id", "prompt", *(f"response_{response_letter(i).lower()}" for i in range(n))])
        for t in req.tasks:
            writer.writerow([t.item_id, t.prompt, *t.responses, *([""] * (n - len(t.responses)))])
        return out.getvalue().encode()

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        name = f"crowdbridge {req.idempotency_key}"
        batch = self._find("/data-collection/batches", "name", name)
        created = batch is None
        if batch is None:
            batch = self._call("POST", "/data-collection/batches", req.batch_id, json={
                "workspace_id": self._workspace, "name": name,
                "task_details": {"task_name": "Compare AI responses", "task_introduction": req.instructions or QUESTION,
                                 "task_steps": "Read the prompt and the responses, then answer."}}).json()
        bid = str(batch["id"])
        if not batch.get("dataset_id"):
            dataset = self._call("POST", "/data-collection/datasets", req.batch_id,
                                 json={"name": name, "workspace_id": self._workspace}).json()
            upload = self._call("GET", f"/data-collection/datasets/{dataset['id']}/upload-url/items.csv",
                                req.batch_id).json()
            request(self._uploads, upload.get("http_method", "PUT"), upload["upload_url"], vendor=self.name,
                    batch_id=req.batch_id, content=self._csv(req), headers={"Content-Type": "text/csv"})
            self._wait_ready(f"/data-collection/datasets/{dataset['id']}/status", req.batch_id)
            batch = self._call("PATCH", f"/data-collection/batches/{bid}", req.batch_id,
                               json={"dataset_id": dataset["id"]}).json()
        if not self._call("GET", f"/data-collection/batches/{bid}/instructions", req.batch_id).json().get("instructions"):
            if req.kind is JudgmentKind.ranking:
                letters = ">".join(response_letter(i) for i in range(max(len(t.responses) for t in req.tasks)))
                instruction = {"type": "free_text", "description": f"Rank the responses best first, e.g. {letters}"}
            else:
                instruction = {"type": "multiple_choice", "description": QUESTION, "answer_limit": 1,
                               "options": [{"label": k, "value": v}
                                           for k, v in option_labels(req.kind, req.rating_scale).items()]}
            self._call("POST", f"/data-collection/batches/{bid}/instructions", req.batch_id,
                       json={"instructions": [instruction]})
        status = self._call("GET", f"/data-collection/batches/{bid}/status", req.batch_id).json().get("status")
        if status == "UNINITIALISED":
            self._call("POST", f"/data-collection/batches/{bid}/setup", req.batch_id,
                       json={"dataset_id": batch["dataset_id"], "tasks_per_group": len(req.tasks)})
        self._wait_ready(f"/data-collection/batches/{bid}/status", req.batch_id)
        study = self._find("/studies/", "internal_name", req.idempotency_key)
        if study is None:
            study = self._call("POST", "/studies/", req.batch_id, json={
                "name": "Compare AI responses", "internal_name": req.idempotency_key,
                "description": req.instructions or QUESTION, "data_collection_method": "AI_TASK_BUILDER_BATCH",
                "data_collection_id": bid, "total_available_places": req.raters_per_item,
                "reward": max(1, round(req.reward_per_judgment * 100 * len(req.tasks))),
                "estimated_completion_time": max(1, len(req.tasks)), "workspace_id": self._workspace,
                "prolific_id_option": "not_required", "completion_codes": [
                    {"code": "CB-DONE", "code_type": "COMPLETED", "actions": [{"action": "AUTOMATICALLY_APPROVE"}]}]}).json()
        if study.get("status") == "UNPUBLISHED":
            self._call("POST", f"/studies/{study['id']}/transition/", req.batch_id, json={"action": "PUBLISH"})
        return VendorBatchRef(vendor=self.name, vendor_batch_id=f"{bid}/{study['id']}", created=created)

    @staticmethod
    def _ids(ref: VendorBatchRef) -> tuple[str, str]:
        batch_id, _, study_id = ref.vendor_batch_id.partition("/")
        return batch_id, study_id

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        _, study_id = self._ids(ref)
        study = self._call("GET", f"/studies/{study_id}").json()
        places = int(study.get("total_available_places") or 0)
        submitted = int(study.get("number_of_submissions") or 0)
        status = study.get("status")
        if status in ("AWAITING REVIEW", "COMPLETED"):
            state = BatchState.completed if submitted >= places else BatchState.cancelled
        elif status == "UNPUBLISHED":
            state = BatchState.pending
        else:
            state = BatchState.in_progress
        # counted in participants (places), the unit Prolific reports; each does every task of the batch
        return VendorBatchStatus(state=state, tasks_total=0, judgments_expected=places, judgments_done=submitted)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        batch_id, study_id = self._ids(ref)
        page = int(decode_cursor(cursor).get("page", 1))
        study = self._call("GET", f"/studies/{study_id}").json()
        body = self._call("GET", f"/data-collection/batches/{batch_id}/responses",
                          params={"page": page, "page_size": self._page_size}).json()
        rows = body.get("results") or []
        tasks = max(1, int(dig(body, "meta", "tasks_per_group") or 1))
        cost = float(study["reward"]) / 100 / tasks if study.get("reward") is not None else None
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        for row in rows:
            parsed = self.parse_response(row, cost)
            (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
        full = len({r.get("id") for r in rows if isinstance(r, dict)}) >= self._page_size
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad),
                          cursor=encode_cursor({"page": page + 1 if full else page}), has_more=full)

    @staticmethod
    def parse_response(row: Any, cost: float | None) -> VendorJudgment | MalformedRecord:
        if not isinstance(row, dict) or not row.get("id") or not row.get("participant_id"):
            return malformed(row, "response has no id or no participant_id")
        item_id = dig(row, "datapoint", "crowdbridge_item_id")
        answers = dig(row, "response", "answer") or []
        value = answers[0].get("value") if answers and isinstance(answers[0], dict) else None
        if not item_id or not isinstance(value, str) or not value:
            return malformed(row, "response has no answer value or its datapoint no crowdbridge_item_id")
        try:
            submitted = parse_time(row.get("created_at"))
            started = parse_time(row["started_at"]) if row.get("started_at") else None
        except ValueError:
            return malformed(row, f"created_at {row.get('created_at')!r} is not a time")
        return VendorJudgment(vendor_judgment_id=f"prolific:{row['id']}", item_id=str(item_id),
                              rater_id=f"prolific:{row['participant_id']}", label=value.strip(),
                              submitted_at=submitted, started_at=started, cost=cost, raw=row)

    def cancel(self, ref: VendorBatchRef) -> None:
        _, study_id = self._ids(ref)
        study = self._call("GET", f"/studies/{study_id}").json()
        if study.get("status") in ("ACTIVE", "PAUSED", "SCHEDULED"):
            self._call("POST", f"/studies/{study_id}/transition/", json={"action": "STOP"})

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        verify_prolific(headers, body, self._secret or "")
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise WebhookRejected("prolific webhook rejected: unreadable body", vendor=self.name) from exc
        event = event if isinstance(event, dict) else {}
        study = event.get("study_id") or (event.get("resource_id") if "study" in str(event.get("event_type")) else None)
        return [WebhookEvent(vendor=self.name, kind=str(event.get("event_type")), vendor_batch_id=None,
                             vendor_task_id=str(study) if study else None, event_id=header(headers, "X-Event-ID"),
                             raw=event)]
