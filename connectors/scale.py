"""Scale AI (REST v1): one categorization task per item, grouped in a batch named by our idempotency key.

Scale returns one final, QA'd answer per task and no rater identity, so each task becomes one
judgment from the rater ``scale:consensus`` and ``capabilities.per_rater_identity`` is False: the
domain must mark such batches not auditable for rater agreement (``Batch.auditable = False``).

Exactly once: the batch name is our idempotency key (a taken name answers 409 -> we reuse the
batch) and every task carries ``unique_id = <key>/<item id>`` (a taken one answers 409 -> we look
the task up by ``unique_id``, as the official SDK does after a 5xx followed by a 409). A retried
submit therefore completes a half-sent batch without creating anything twice, then finalizes it.

Results: ``GET /v1/tasks?batch=&status=completed&completed_after=`` with ``next_token`` paging. The
cursor keeps the newest ``completed_at`` seen and re-reads a ``since_lag_s`` window before it on the
next traversal (late-visible tasks are not missed; the unique key absorbs the re-reads).
Callbacks carry the static ``scale-callback-auth`` key (``webhook_secret``).
"""

from __future__ import annotations

import json
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
)
from connectors.errors import VendorRejected, WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import decode_cursor, encode_cursor, iso_z, malformed, option_labels, parse_time, render_task
from connectors.webhooks import verify_scale

__all__ = ["ScaleConnector"]

CONSENSUS_RATER = "scale:consensus"


class ScaleConnector:
    name: ClassVar[str] = "scale"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=False, webhooks=True, idempotent_submit=True, cancel=True, cost=False,
        kinds=(JudgmentKind.pairwise, JudgmentKind.rating, JudgmentKind.binary))

    def __init__(self, client: httpx.Client, *, project: str, callback_url: str | None = None,
                 callback_key: str | None = None, page_size: int = 100, since_lag_s: float = 60.0) -> None:
        self._client = client
        self._project = project
        self._callback_url = callback_url
        self._callback_key = callback_key
        self._page_size = page_size
        self._lag = since_lag_s

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> ScaleConnector:
        client = build_client(options.get("base_url") or "https://api.scale.com/v1",
                              auth=httpx.BasicAuth(str(options.get("api_key") or ""), ""),
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, project=str(options.get("project", "crowdbridge")),
                   callback_url=options.get("callback_url"), callback_key=options.get("webhook_secret"),
                   page_size=int(options.get("page_size", 100)), since_lag_s=float(options.get("since_lag_s", 60)))

    # -- submit ---------------------------------------------------------------------------------------

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        if req.kind not in self.capabilities.kinds:
            raise VendorRejected(f"scale: {req.kind.value} items are not supported by this connector",
                                 vendor=self.name, batch_id=req.batch_id)
        name = req.idempotency_key
        callback = req.callback_url or self._callback_url or ""
        response = request(self._client, "POST", "/batches", vendor=self.name, batch_id=req.batch_id, ok=(409,),
                           json={"project": self._project, "name": name, "callback": callback,
                                 "metadata": {"crowdbridge_batch_id": req.batch_id}})
        created = response.status_code != 409
        batch = response.json() if created else request(self._client, "GET", f"/batches/{name}",
                                                        vendor=self.name, batch_id=req.batch_id).json()
        if batch.get("status") == "staging":
            categories = list(option_labels(req.kind, req.rating_scale))
            for task in req.tasks:
                self._create_task(req, task.item_id, render_task(task), categories, callback)
            request(self._client, "POST", f"/batches/{name}/finalize", vendor=self.name, batch_id=req.batch_id)
        return VendorBatchRef(vendor=self.name, vendor_batch_id=name, created=created)

    def _create_task(self, req: BatchRequest, item_id: str, text: str, categories: list[str], callback: str) -> None:
        unique_id = f"{req.idempotency_key}/{item_id}"
        body = {"project": self._project, "batch": req.idempotency_key, "unique_id": unique_id,
                "callback_url": callback, "instruction": req.instructions or "Which response is better?",
                "attachment_type": "text", "attachment": text, "categories": categories,
                "metadata": {"item_id": item_id, "crowdbridge_batch_id": req.batch_id, "kind": req.kind.value,
                             "rating_scale": req.rating_scale}}
        response = request(self._client, "POST", "/task/categorization", vendor=self.name, batch_id=req.batch_id,
                           ok=(409,), json=body)
        if response.status_code == 409:  # created by an earlier attempt: confirm it is ours
            found = request(self._client, "GET", "/tasks", vendor=self.name, batch_id=req.batch_id,
                            params={"unique_id": unique_id}).json().get("docs") or []
            if not found or found[0].get("batch") != req.idempotency_key:
                raise VendorRejected(f"scale: unique_id {unique_id} is taken by another batch", vendor=self.name,
                                     batch_id=req.batch_id)

    # -- poll / fetch ---------------------------------------------------------------------------------

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        data = request(self._client, "GET", f"/batches/{ref.vendor_batch_id}/status", vendor=self.name).json()
        counts = {k: int(data.get(k) or 0) for k in ("pending", "completed", "error", "canceled")}
        total = sum(counts.values())
        status = data.get("status")
        if counts["canceled"] and not counts["pending"]:
            state = BatchState.cancelled
        elif status == "completed" or (total and not counts["pending"]):
            state = BatchState.completed
        elif status == "staging":
            state = BatchState.pending
        else:
            state = BatchState.in_progress if counts["completed"] else BatchState.pending
        return VendorBatchStatus(state=state, tasks_total=total, judgments_expected=total - counts["canceled"],
                                 judgments_done=counts["completed"])

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        state = decode_cursor(cursor)
        params: dict[str, Any] = {"batch": ref.vendor_batch_id, "status": "completed", "limit": self._page_size}
        if state.get("since"):
            params["completed_after"] = state["since"]
        if state.get("token"):
            params["next_token"] = state["token"]
        data = request(self._client, "GET", "/tasks", vendor=self.name, params=params).json()
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        newest = state.get("newest")
        for doc in data.get("docs") or []:
            parsed = self.parse_task(doc)
            (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
            if isinstance(parsed, VendorJudgment):
                stamp = iso_z(parsed.submitted_at)
                newest = max(newest or stamp, stamp)
        token = data.get("next_token")
        if token:
            next_state = {"since": state.get("since"), "token": token, "newest": newest}
        else:  # traversal done: next time start a lag window before the newest completion seen
            since = iso_z(parse_time(newest), minus_s=self._lag) if newest else state.get("since")
            next_state = {"since": since, "token": None, "newest": newest}
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=encode_cursor(next_state),
                          has_more=bool(token))

    @staticmethod
    def parse_task(doc: Any) -> VendorJudgment | MalformedRecord:
        if not isinstance(doc, dict):
            return malformed(doc, "task is not a JSON object")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        item_id = meta.get("item_id")
        if not isinstance(doc.get("task_id"), str) or not item_id:
            return malformed(doc, "task has no task_id or no metadata.item_id")
        kind = JudgmentKind(meta.get("kind", "pairwise")) if meta.get("kind") in JudgmentKind._value2member_map_ \
            else JudgmentKind.pairwise
        response = doc.get("response") if isinstance(doc.get("response"), dict) else {}
        category = response.get("category")
        labels = option_labels(kind, int(meta.get("rating_scale") or 5))
        if category not in labels:
            return malformed(doc, f"response.category {category!r} is not one of {sorted(labels)}")
        try:
            submitted = parse_time(doc.get("completed_at"))
        except ValueError:
            return malformed(doc, f"completed_at {doc.get('completed_at')!r} is not a time")
        return VendorJudgment(vendor_judgment_id=f"scale:{doc['task_id']}", item_id=str(item_id),
                              rater_id=CONSENSUS_RATER, label=labels[category], submitted_at=submitted, raw=doc)

    # -- cancel / webhooks ----------------------------------------------------------------------------

    def cancel(self, ref: VendorBatchRef) -> None:
        """Cancel every task still pending (Scale cancels only work not yet done; 409 = already done)."""
        token: str | None = None
        pending: list[str] = []
        while True:
            params: dict[str, Any] = {"batch": ref.vendor_batch_id, "status": "pending", "limit": 100}
            if token:
                params["next_token"] = token
            data = request(self._client, "GET", "/tasks", vendor=self.name, params=params).json()
            pending += [d["task_id"] for d in data.get("docs") or [] if isinstance(d, dict) and d.get("task_id")]
            token = data.get("next_token")
            if not token:
                break
        for task_id in pending:
            request(self._client, "POST", f"/task/{task_id}/cancel", vendor=self.name, ok=(409,))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        verify_scale(headers, self._callback_key or "")
        try:
            payload = json.loads(body)
            task = payload["task"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("scale webhook rejected: unreadable body", vendor=self.name) from exc
        return [WebhookEvent(vendor=self.name, kind=f"task.{task.get('status', 'updated')}",
                             vendor_batch_id=task.get("batch"), vendor_task_id=payload.get("task_id"), raw=payload)]

