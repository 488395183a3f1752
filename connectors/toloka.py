"""Toloka: a project per judgment kind, a pool per batch (overlap = raters), tasks created idempotently.

Exactly once: the pool's ``private_name`` is our idempotency key (looked up before creating one:
pools have no idempotency key), and tasks are created with ``operation_id = uuid5(key)`` (a repeat
answers 409 ``OPERATION_ALREADY_EXISTS``; we then read that operation, as toloka-kit does).
Results: assignments searched by ``submitted_gte`` with ``sort=submitted`` (keyset on the submit time,
not on ``id``: ids are given when a Toloker takes a task, so an id-keyset misses late submissions),
re-reading a ``since_lag_s`` window on each traversal (Toloka's search is eventually consistent,
toloka-kit PR #200). Each assignment (one task per suite) is one judgment: ``user_id``, ``created``
-> ``submitted``, ``reward`` as cost. Webhooks: ``Toloka-Signature`` HMAC (``webhook_secret``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    WebhookEvent,
)
from connectors.errors import VendorRejected, WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import dig, decode_cursor, encode_cursor, malformed, parse_time
from connectors.webhooks import verify_toloka

__all__ = ["TolokaConnector"]


def _toloka_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


class TolokaConnector:
    name: ClassVar[str] = "toloka"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=True, idempotent_submit=True, cancel=True, cost=True)

    def __init__(self, client: httpx.Client, *, webhook_secret: str | None = None, page_size: int = 100,
                 since_lag_s: float = 60.0) -> None:
        self._client = client
        self._secret = webhook_secret
        self._page_size = page_size
        self._lag = since_lag_s

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> TolokaConnector:
        scheme = options.get("auth_scheme", "OAuth")
        client = build_client(options.get("base_url") or "https://toloka.dev/api",
                              headers={"Authorization": f"{scheme} {options.get('api_key') or ''}"},
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, webhook_secret=options.get("webhook_secret"), page_size=int(options.get("page_size", 100)),
                   since_lag_s=float(options.get("since_lag_s", 60)))

    def _call(self, method: str, url: str, batch_id: str | None = None, **kwargs: Any) -> httpx.Response:
        return request(self._client, method, url, vendor=self.name, batch_id=batch_id, **kwargs)

    def _project(self, req: BatchRequest) -> str:
        marker = f"crowdbridge/{req.kind.value}"
        for project in self._call("GET", "/v1/projects", params={"status": "ACTIVE"}).json().get("items", []):
            if project.get("private_comment") == marker:
                return str(project["id"])
        body = {"public_name": "Compare AI responses", "public_description": "Judge which response is better",
                "public_instructions": req.instructions or "Pick the better response.", "private_comment": marker,
                "task_spec": {"input_spec": {"item_id": {"type": "string", "required": True},
                                             "prompt": {"type": "string", "required": True},
                                             "responses": {"type": "json", "required": True}},
                              "output_spec": {"result": {"type": "string", "required": True}},
                              "view_spec": {"type": "tb", "config": "{}"}}}
        return str(self._call("POST", "/v1/projects", req.batch_id, json=body).json()["id"])

    def _find_pool(self, project_id: str, name: str) -> dict[str, Any] | None:
        id_gt: str | None = None
        while True:
            params = {"project_id": project_id, "sort": "id", "limit": 100, **({"id_gt": id_gt} if id_gt else {})}
            page = self._call("GET", "/v1/pools", params=params).json()
            for pool in page.get("items", []):
                if pool.get("private_name") == name:
                    return pool
            if not page.get("has_more") or not page.get("items"):
                return None
            id_gt = str(page["items"][-1]["id"])

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        project_id = self._project(req)
        pool = self._find_pool(project_id, req.idempotency_key)
        created = pool is None
        if pool is None:
            body = {"project_id": project_id, "private_name": req.idempotency_key, "may_contain_adult_content": False,
                    "will_expire": _toloka_time(datetime.now(timezone.utc) + timedelta(days=30)),
                    "reward_per_assignment": max(0.005, req.reward_per_judgment),
                    "assignment_max_duration_seconds": 900,
                    "defaults": {"default_overlap_for_new_tasks": req.raters_per_item,
                                 "default_overlap_for_new_task_suites": 0},
                    "mixer_config": {"real_tasks_count": 1, "golden_tasks_count": 0, "training_tasks_count": 0},
                    "metadata": {"kind": [req.kind.value], "crowdbridge_batch_id": [req.batch_id]}}
            pool = self._call("POST", "/v1/pools", req.batch_id, json=body).json()
        pool_id = str(pool["id"])
        operation_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"crowdbridge/{req.idempotency_key}"))
        tasks = [{"pool_id": pool_id, "overlap": req.raters_per_item,
                  "input_values": {"item_id": t.item_id, "prompt": t.prompt, "responses": list(t.responses)}}
                 for t in req.tasks]
        response = self._call("POST", "/v1/tasks", req.batch_id, ok=(409,), json=tasks,
                              params={"async_mode": "true", "allow_defaults": "true", "open_pool": "true",
                                      "operation_id": operation_id})
        if response.status_code == 409:
            code = response.json().get("code") if response.content else None
            if code != "OPERATION_ALREADY_EXISTS":
                raise VendorRejected(f"toloka: task upload refused ({code})", vendor=self.name, batch_id=req.batch_id)
            operation = self._call("GET", f"/v1/operations/{operation_id}", req.batch_id).json()
            if operation.get("status") == "FAIL":
                raise VendorRejected("toloka: the earlier task upload failed", vendor=self.name, batch_id=req.batch_id)
        return VendorBatchRef(vendor=self.name, vendor_batch_id=pool_id, created=created)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        pool = self._call("GET", f"/v1/pools/{ref.vendor_batch_id}").json()
        status, reason = pool.get("status"), pool.get("last_close_reason")
        if status == "OPEN":
            state = BatchState.in_progress
        elif reason == "COMPLETED":
            state = BatchState.completed
        elif reason == "NOT_STARTED":
            state = BatchState.pending
        else:
            state = BatchState.cancelled  # closed by hand, expired, blocked
        # Toloka's pool payload has no counters; progress comes from the assignments themselves
        return VendorBatchStatus(state=state, tasks_total=0, judgments_expected=0, judgments_done=0)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        state = decode_cursor(cursor)
        params: dict[str, Any] = {"pool_id": ref.vendor_batch_id, "status": "SUBMITTED,ACCEPTED",
                                  "sort": "submitted,id", "limit": self._page_size}
        if state.get("s"):
            params["submitted_gte"] = state["s"]
        page = self._call("GET", "/v1/assignments", params=params).json()
        after = tuple(state["after"]) if state.get("after") else None
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        last = after
        newest = state.get("newest")
        for item in page.get("items") or []:
            key = (str(item.get("submitted")), str(item.get("id"))) if isinstance(item, dict) else None
            if key is not None and after is not None and key <= after:
                continue
            parsed = self.parse_assignment(item)
            (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
            if key is not None:
                last = key if last is None or key > last else last
                newest = key[0] if newest is None or key[0] > newest else newest
        more = bool(page.get("has_more"))
        if more and last is not None:
            next_state = {"s": last[0], "after": list(last), "newest": newest}
        else:
            since = _toloka_time(parse_time(newest + "Z") - timedelta(seconds=self._lag)) if newest else state.get("s")
            next_state = {"s": since, "after": None, "newest": newest}
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=encode_cursor(next_state),
                          has_more=more)

    @staticmethod
    def parse_assignment(item: Any) -> VendorJudgment | MalformedRecord:
        if not isinstance(item, dict) or not item.get("id") or not item.get("user_id"):
            return malformed(item, "assignment has no id or no user_id")
        tasks, solutions = item.get("tasks") or [], item.get("solutions") or []
        if len(tasks) != 1 or len(solutions) != 1:
            return malformed(item, f"expected one task and one solution, got {len(tasks)} and {len(solutions)}")
        item_id = dig(tasks[0], "input_values", "item_id")
        result = dig(solutions[0], "output_values", "result")
        if not item_id or not isinstance(result, str) or not result:
            return malformed(item, "solution has no output_values.result or the task no item_id")
        try:
            submitted = parse_time(str(item.get("submitted")) + "Z")
            started = parse_time(str(item["created"]) + "Z") if item.get("created") else None
        except ValueError:
            return malformed(item, "created/submitted are not times")
        reward = item.get("reward")
        return VendorJudgment(vendor_judgment_id=f"toloka:{item['id']}", item_id=str(item_id),
                              rater_id=f"toloka:{item['user_id']}", label=result, submitted_at=submitted,
                              started_at=started, cost=float(reward) if reward is not None else None, raw=item)

    def cancel(self, ref: VendorBatchRef) -> None:
        pool = self._call("GET", f"/v1/pools/{ref.vendor_batch_id}").json()
        if pool.get("status") == "OPEN":
            self._call("POST", f"/v1/pools/{ref.vendor_batch_id}/close", ok=(409,))

    def subscribe_webhook(self, ref: VendorBatchRef, url: str, *, secret: str | None = None) -> None:
        """Ask Toloka to POST ASSIGNMENT_SUBMITTED and POOL_CLOSED events for this pool to ``url``."""
        body = [{"webhook_url": url, "event_type": event, "pool_id": ref.vendor_batch_id,
                 "secret_key": secret or self._secret} for event in ("ASSIGNMENT_SUBMITTED", "POOL_CLOSED")]
        self._call("PUT", "/v1/webhook-subscriptions", json=body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        verify_toloka(headers, body, self._secret or "")
        try:
            events = json.loads(body)["events"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("toloka webhook rejected: unreadable body", vendor=self.name) from exc
        return [WebhookEvent(vendor=self.name, kind=str(e.get("type")), vendor_batch_id=str(e.get("pool_id")),
                             vendor_task_id=e.get("assignment_id"), event_id=e.get("uuid"), raw=e) for e in events]
