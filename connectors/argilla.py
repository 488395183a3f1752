"""Argilla 2.x (self-hosted, Hugging Face): one dataset per batch, records upserted by ``external_id``.

Wire (``<server>/api/v1``, header ``X-Argilla-Api-Key``; argilla-server 2.8 handlers, see apis.md):

* submit: the dataset is named ``cb-<idempotency key>`` in workspace ``workspace`` (``GET /me/workspaces``);
  it is looked up (``GET /me/datasets``) before ``POST /datasets`` with ``distribution: {strategy: overlap,
  min_submitted: raters}``, then fields ``prompt``/``response_a``.. and one question ``preference``
  (``label_selection`` whose option values are our canonical labels; ``ranking`` for k-way; ``rating``),
  then ``PUT /datasets/{id}/publish``. Records go in with ``PUT /datasets/{id}/records/bulk`` carrying
  ``external_id = <item id>``: an upsert, so a retried submit never duplicates a record.
  ``vendor_batch_id`` is ``<dataset id>:<records submitted>``.
* poll: ``GET /datasets/{id}/progress`` (``total``, ``completed``, ``pending``); fewer records than were
  submitted means the batch was cancelled (records deleted).
* fetch: ``GET /datasets/{id}/records?include=responses&offset&limit`` (limit <= 1000), one judgment per
  *submitted* response (``user_id``, ``values.preference.value``, ``inserted_at``/``updated_at``); drafts and
  discarded responses are not answers. The cursor is the offset of the first record not yet completed.
* webhooks: Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with the
  secret ``POST /webhooks`` returned (:meth:`subscribe_webhook`).
* cancel: Argilla has no cancel; records not yet completed are deleted
  (``DELETE /datasets/{id}/records?ids=``). Cost: none (your own annotators).
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
    response_letter,
)
from connectors.errors import VendorRejected, WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import dig, decode_cursor, encode_cursor, malformed, option_labels, parse_time
from connectors.webhooks import header, verify_standard_webhook

__all__ = ["ArgillaConnector"]

QUESTION = "preference"


class ArgillaConnector:
    name: ClassVar[str] = "argilla"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=True, idempotent_submit=True, cancel=True, cost=False)

    def __init__(self, client: httpx.Client, *, workspace: str = "crowdbridge", webhook_secret: str | None = None,
                 page_size: int = 100) -> None:
        self._client = client
        self._workspace = workspace
        self._secret = webhook_secret
        self._page_size = min(page_size, 1000)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> ArgillaConnector:
        client = build_client(options.get("base_url") or "http://127.0.0.1:6900",
                              headers={"X-Argilla-Api-Key": str(options.get("api_key") or "")},
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, workspace=str(options.get("workspace", "crowdbridge")),
                   webhook_secret=options.get("webhook_secret"), page_size=int(options.get("page_size", 100)))

    def _call(self, method: str, url: str, batch_id: str | None = None, **kwargs: Any) -> httpx.Response:
        return request(self._client, method, "/api/v1" + url, vendor=self.name, batch_id=batch_id, **kwargs)

    def _workspace_id(self, batch_id: str) -> str:
        for ws in self._call("GET", "/me/workspaces", batch_id).json().get("items") or []:
            if ws.get("name") == self._workspace:
                return str(ws["id"])
        raise VendorRejected(f"argilla: workspace {self._workspace!r} does not exist or is not yours",
                             vendor=self.name, batch_id=batch_id)

    def _question(self, req: BatchRequest) -> dict[str, Any]:
        if req.kind is JudgmentKind.ranking:
            n = max(len(t.responses) for t in req.tasks)
            settings: dict[str, Any] = {"type": "ranking", "options": [
                {"value": response_letter(i), "text": f"Response {response_letter(i)}"} for i in range(n)]}
        elif req.kind is JudgmentKind.rating:
            settings = {"type": "rating", "options": [{"value": i} for i in range(1, req.rating_scale + 1)]}
        else:
            settings = {"type": "label_selection", "options": [
                {"value": v, "text": k} for k, v in option_labels(req.kind, req.rating_scale).items()]}
        return {"name": QUESTION, "title": "Which response is better?", "required": True, "settings": settings}

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        name = f"cb-{req.idempotency_key}"
        ws = self._workspace_id(req.batch_id)
        existing = [d for d in self._call("GET", "/me/datasets", req.batch_id).json().get("items") or []
                    if d.get("name") == name and str(d.get("workspace_id")) == ws]
        created = not existing
        if existing:
            dataset = existing[0]
        else:
            dataset = self._call("POST", "/datasets", req.batch_id, json={
                "name": name, "guidelines": req.instructions or "Pick the better response.", "workspace_id": ws,
                "allow_extra_metadata": True,
                "distribution": {"strategy": "overlap", "min_submitted": req.raters_per_item}}).json()
        did = str(dataset["id"])
        if dataset.get("status") != "ready":
            n = max(len(t.responses) for t in req.tasks)
            have = {f["name"] for f in self._call("GET", f"/datasets/{did}/fields", req.batch_id).json()["items"]}
            for field in ["prompt", *(f"response_{response_letter(i).lower()}" for i in range(n))]:
                if field not in have:
                    self._call("POST", f"/datasets/{did}/fields", req.batch_id, json={
                        "name": field, "title": field.replace("_", " ").capitalize(), "required": field in (
                            "prompt", "response_a"), "settings": {"type": "text", "use_markdown": False}})
            if not self._call("GET", f"/datasets/{did}/questions", req.batch_id).json()["items"]:
                self._call("POST", f"/datasets/{did}/questions", req.batch_id, json=self._question(req))
            self._call("PUT", f"/datasets/{did}/publish", req.batch_id)
        items = [{"external_id": t.item_id, "fields": {"prompt": t.prompt, **{
            f"response_{response_letter(i).lower()}": r for i, r in enumerate(t.responses)}},
            "metadata": {"crowdbridge_batch_id": req.batch_id}} for t in req.tasks]
        for start in range(0, len(items), 500):
            self._call("PUT", f"/datasets/{did}/records/bulk", req.batch_id, json={"items": items[start:start + 500]})
        return VendorBatchRef(vendor=self.name, vendor_batch_id=f"{did}:{len(items)}", created=created)

    @staticmethod
    def _ids(ref: VendorBatchRef) -> tuple[str, int]:
        did, _, n = ref.vendor_batch_id.partition(":")
        return did, int(n or 0)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        did, submitted = self._ids(ref)
        dataset = self._call("GET", f"/datasets/{did}").json()
        progress = self._call("GET", f"/datasets/{did}/progress").json()
        total, done = int(progress.get("total") or 0), int(progress.get("completed") or 0)
        if total < submitted:
            state = BatchState.cancelled
        elif total and done >= total:
            state = BatchState.completed
        else:
            state = BatchState.in_progress
        overlap = int(dig(dataset, "distribution", "min_submitted") or 1)
        return VendorBatchStatus(state=state, tasks_total=total, judgments_expected=total * overlap,
                                 judgments_done=done * overlap)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        did, _ = self._ids(ref)
        state = decode_cursor(cursor)
        offset, frontier = int(state.get("o", 0)), int(state.get("f", 0))
        gap = bool(state.get("g"))
        body = self._call("GET", f"/datasets/{did}/records", params={
            "include": "responses", "offset": offset, "limit": self._page_size}).json()
        rows = body.get("items") or []
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        for i, record in enumerate(rows):
            for response in (record.get("responses") or []) if isinstance(record, dict) else []:
                if isinstance(response, dict) and response.get("status") in ("draft", "discarded"):
                    continue
                parsed = self.parse_response(record, response)
                (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
            complete = isinstance(record, dict) and record.get("status") == "completed"
            if complete and not gap and offset + i == frontier:
                frontier += 1
            elif not complete:
                gap = True
        more = len(rows) >= self._page_size
        next_state = {"o": offset + len(rows), "f": frontier, "g": gap} if more else {"o": frontier, "f": frontier}
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=encode_cursor(next_state),
                          has_more=more)

    @staticmethod
    def parse_response(record: Mapping[str, Any], response: Any) -> VendorJudgment | MalformedRecord:
        raw = {"record_id": record.get("id"), "external_id": record.get("external_id"), "response": response}
        if not isinstance(response, dict) or not response.get("id") or not response.get("user_id"):
            return malformed(raw, "response has no id or no user_id")
        values = response.get("values")
        answer = values.get(QUESTION) if isinstance(values, dict) else None
        value = answer.get("value") if isinstance(answer, dict) else None
        if isinstance(value, list):  # ranking: [{"value": "B", "rank": 1}, ...]
            try:
                value = ">".join(str(v["value"]) for v in sorted(value, key=lambda v: int(v["rank"])))
            except (KeyError, TypeError, ValueError, OverflowError):
                value = None
        elif isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not record.get("external_id") or not isinstance(value, str) or not value:
            return malformed(raw, f"response has no {QUESTION!r} value or its record no external_id")
        try:
            submitted = parse_time(response.get("updated_at") or response.get("inserted_at"))
            started = parse_time(response["inserted_at"]) if response.get("inserted_at") else None
        except ValueError:
            return malformed(raw, "response inserted_at/updated_at are not times")
        return VendorJudgment(vendor_judgment_id=f"argilla:{response['id']}", item_id=str(record["external_id"]),
                              rater_id=f"argilla:{response['user_id']}", label=value, submitted_at=submitted,
                              started_at=started, raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        did, _ = self._ids(ref)
        offset, doomed = 0, []
        while True:
            rows = self._call("GET", f"/datasets/{did}/records", params={"offset": offset, "limit": 1000}).json()
            items = rows.get("items") or []
            doomed += [str(r["id"]) for r in items if r.get("status") != "completed"]
            if len(items) < 1000:
                break
            offset += len(items)
        for start in range(0, len(doomed), 100):
            self._call("DELETE", f"/datasets/{did}/records", params={"ids": ",".join(doomed[start:start + 100])})

    def subscribe_webhook(self, url: str) -> str:
        """Ask Argilla to POST response/record events to ``url``; returns the signing secret to keep."""
        hook = self._call("POST", "/webhooks", json={"url": url, "description": "crowdbridge", "events": [
            "response.created", "response.updated", "record.completed"]}).json()
        return str(hook["secret"])

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        verify_standard_webhook(headers, body, self._secret or "")
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise WebhookRejected("argilla webhook rejected: unreadable body", vendor=self.name) from exc
        data = event.get("data") if isinstance(event, dict) else None
        data = data if isinstance(data, dict) else {}
        record = data.get("record") if isinstance(data.get("record"), dict) else data
        dataset = dig(record, "dataset", "id") if isinstance(record.get("dataset"), dict) else None
        return [WebhookEvent(vendor=self.name, kind=str(event.get("type")), vendor_batch_id=None,
                             vendor_task_id=str(record.get("external_id") or record.get("id") or "") or None,
                             event_id=header(headers, "webhook-id"),
                             raw={**event, "dataset_id": dataset} if isinstance(event, dict) else {})]
