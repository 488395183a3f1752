"""Label Studio (OSS 1.23, verified live): a project per batch, raters as LS users, every annotation a judgment.

Auth: ``Authorization: Token <legacy token>`` (``auth_scheme: "token"``, default) or a personal access
token (``auth_scheme: "pat"``): the PAT is exchanged at ``/api/token/refresh/`` for a 5-minute access JWT,
refreshed on expiry and once on a 401.

Exactly once: LS import has no idempotency (re-importing duplicates tasks), so the project title is
``cb <idempotency key>`` and a submit first looks the project up, then lists its tasks' ``external_id``
and imports only the missing ones. Overlap is ``maximum_annotations`` (= raters; LS does not enforce it
on API writes).

Results: ``GET /api/tasks/?project=&page=&page_size=&fields=all`` with a Data Manager filter
``updated_at > since`` (the only datetime form LS accepts: ``%Y-%m-%dT%H:%M:%S.%fZ``); a page past the end
answers 404 ``Invalid page`` (the stop condition). After a traversal the cursor moves ``since`` to the newest
``updated_at`` seen minus ``since_lag_s``. Judgment id = the annotation's ``unique_id`` (LS reuses integer ids
after deletes on SQLite). Skipped annotations (``was_cancelled``) are quarantined, not counted.

Webhooks: LS sends them unsigned, inline, with a 1 s timeout and no retry; :meth:`register_webhook` adds a
static secret header and :meth:`parse_webhook` checks it in constant time. They are hints to poll soon.
Cancel: LS OSS cannot pause a project, so cancel deletes the tasks nobody has annotated yet and marks the
project's description; finished annotations stay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import timedelta
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
from connectors.errors import VendorAuthError, WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import dig, decode_cursor, encode_cursor, iso_z, malformed, parse_time
from connectors.webhooks import verify_static_header

__all__ = ["LabelStudioConnector", "label_config"]

CANCELLED_MARK = "[crowdbridge: cancelled]"
SECRET_HEADER = "X-Crowdbridge-Hook-Secret"


def label_config(kind: JudgmentKind, n_responses: int = 2, scale: int = 5) -> str:
    """The labeling interface for one kind (pairwise as measured in label-studio.md §4.1)."""
    if kind is JudgmentKind.pairwise:
        return ('<View><Text name="prompt" value="$prompt"/><Text name="response_a" value="$response_a"/>'
                '<Text name="response_b" value="$response_b"/>'
                '<Pairwise name="preference" toName="response_a,response_b"/>'
                '<Choices name="tie" toName="prompt" choice="single"><Choice value="tie"/></Choices></View>')
    if kind is JudgmentKind.ranking:
        return ('<View><Text name="prompt" value="$prompt"/><List name="responses" value="$responses" '
                'title="Responses"/><Ranker name="rank" toName="responses"/></View>')
    if kind is JudgmentKind.rating:
        return (f'<View><Text name="prompt" value="$prompt"/><Text name="response_a" value="$response_a"/>'
                f'<Rating name="rating" toName="response_a" maxRating="{scale}" required="true"/></View>')
    return ('<View><Text name="prompt" value="$prompt"/><Text name="response_a" value="$response_a"/>'
            '<Choices name="verdict" toName="response_a" choice="single"><Choice value="up"/>'
            '<Choice value="down"/></Choices></View>')


def task_data(kind: JudgmentKind, item_id: str, prompt: str, responses: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {"external_id": item_id, "prompt": prompt, "kind": kind.value}
    if kind is JudgmentKind.ranking:
        data["responses"] = [{"id": response_letter(i), "title": f"Response {response_letter(i)}", "body": text}
                             for i, text in enumerate(responses)]
    else:
        for i, text in enumerate(responses):
            data[f"response_{response_letter(i).lower()}"] = text
    return data


def parse_result(kind: str, result: Any) -> str | None:
    """An annotation's ``result`` list -> canonical label, or None when it holds no readable answer."""
    if not isinstance(result, list):
        return None
    for region in result:
        if not isinstance(region, dict) or not isinstance(region.get("value"), dict):
            continue
        value, rtype = region["value"], region.get("type")
        if rtype == "choices" and value.get("choices") in (["tie"], ["up"], ["down"]):
            return str(value["choices"][0])
        if kind == "pairwise" and rtype == "pairwise":
            return {"left": "A", "right": "B"}.get(value.get("selected"))  # type: ignore[arg-type]
        if kind == "ranking" and rtype == "ranker":
            order = dig(value, "ranker", "rank")
            if isinstance(order, list) and order and all(isinstance(x, str) for x in order):
                return ">".join(order)
        if kind == "rating" and rtype == "rating" and isinstance(value.get("rating"), int):
            return str(value["rating"])
    return None


class LabelStudioConnector:
    name: ClassVar[str] = "label_studio"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=True, idempotent_submit=False, cancel=True, cost=False)

    def __init__(self, client: httpx.Client, *, auth_scheme: str = "token", token: str = "", page_size: int = 100,
                 since_lag_s: float = 60.0, webhook_secret: str | None = None) -> None:
        self._client = client
        self._scheme = auth_scheme
        self._token = token
        self._access: tuple[str, float] | None = None
        self._page_size = page_size
        self._lag = since_lag_s
        self._secret = webhook_secret

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> LabelStudioConnector:
        client = build_client(options.get("base_url") or "http://127.0.0.1:18089",
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, auth_scheme=str(options.get("auth_scheme", "token")), token=str(options.get("api_key") or ""),
                   page_size=int(options.get("page_size", 100)), since_lag_s=float(options.get("since_lag_s", 60)),
                   webhook_secret=options.get("webhook_secret"))

    # -- wire -------------------------------------------------------------------------------------------

    def _auth(self, force: bool = False) -> dict[str, str]:
        if self._scheme != "pat":
            return {"Authorization": f"Token {self._token}"}
        if force or self._access is None or self._access[1] < time.monotonic():
            data = request(self._client, "POST", "/api/token/refresh/", vendor=self.name,
                           json={"refresh": self._token}).json()
            self._access = (data["access"], time.monotonic() + 240)  # access JWTs live 300 s
        return {"Authorization": f"Bearer {self._access[0]}"}

    def _call(self, method: str, url: str, batch_id: str | None = None, **kwargs: Any) -> httpx.Response:
        try:
            return request(self._client, method, url, vendor=self.name, batch_id=batch_id,
                           headers=self._auth(), **kwargs)
        except VendorAuthError:
            if self._scheme != "pat":
                raise
            return request(self._client, method, url, vendor=self.name, batch_id=batch_id,
                           headers=self._auth(force=True), **kwargs)

    def _project_by_title(self, title: str) -> dict[str, Any] | None:
        page = 1
        while True:
            data = self._call("GET", "/api/projects/", params={"page": page, "page_size": 100, "title": title}).json()
            for project in data.get("results", []):
                if project.get("title") == title:
                    return project
            if not data.get("next"):
                return None
            page += 1

    def _iter_tasks(self, project_id: int | str, *, fields: str = "all", query: str | None = None):  # type: ignore[no-untyped-def]
        page = 1
        while True:
            params: dict[str, Any] = {"project": project_id, "page": page, "page_size": self._page_size,
                                      "fields": fields}
            if query:
                params["query"] = query
            response = self._call("GET", "/api/tasks/", params=params, ok=(404,))
            if response.status_code == 404:
                return
            rows = response.json().get("tasks", [])
            yield from rows
            if len(rows) < self._page_size:
                return
            page += 1

    # -- verbs ------------------------------------------------------------------------------------------

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        title = f"cb {req.idempotency_key}"[:50]
        project = self._project_by_title(title)
        created = project is None
        if project is None:
            n = max(len(t.responses) for t in req.tasks)
            body = {"title": title, "description": f"crowdbridge batch {req.batch_id}",
                    "label_config": label_config(req.kind, n, req.rating_scale),
                    "maximum_annotations": req.raters_per_item, "expert_instruction": req.instructions}
            project = self._call("POST", "/api/projects/", req.batch_id, json=body).json()
        pid = project["id"]
        have = {dig(t, "data", "external_id") for t in self._iter_tasks(pid, fields="task_only")}
        missing = [{"data": task_data(req.kind, t.item_id, t.prompt, t.responses),
                    "meta": {"crowdbridge_batch_id": req.batch_id}} for t in req.tasks if t.item_id not in have]
        if missing:
            self._call("POST", f"/api/projects/{pid}/import", req.batch_id, params={"return_task_ids": "true"},
                       json=missing)
        return VendorBatchRef(vendor=self.name, vendor_batch_id=str(pid), created=created)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        p = self._call("GET", f"/api/projects/{ref.vendor_batch_id}/").json()
        total = int(p.get("task_number") or 0)
        overlap = int(p.get("maximum_annotations") or 1)
        done = int(p.get("total_annotations_number") or 0)
        finished = int(p.get("finished_task_number") or 0)
        if CANCELLED_MARK in (p.get("description") or ""):
            state = BatchState.cancelled
        elif total and finished >= total:
            state = BatchState.completed
        else:
            state = BatchState.in_progress if done else BatchState.pending
        return VendorBatchStatus(state=state, tasks_total=total, judgments_expected=total * overlap,
                                 judgments_done=min(done, total * overlap))

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        state = decode_cursor(cursor)
        page = int(state.get("page", 1))
        since = state.get("since")
        params: dict[str, Any] = {"project": ref.vendor_batch_id, "page": page, "page_size": self._page_size,
                                  "fields": "all"}
        if since:
            params["query"] = json.dumps({"filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}]}})
        response = self._call("GET", "/api/tasks/", params=params, ok=(404,))
        rows = [] if response.status_code == 404 else response.json().get("tasks", [])
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        newest = state.get("newest")
        for task in rows:
            stamp = task.get("updated_at")
            if isinstance(stamp, str):
                newest = max(newest or stamp, stamp)
            for annotation in task.get("annotations") or []:
                parsed = self.parse_annotation(ref.vendor_batch_id, task, annotation)
                (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
        more = len(rows) == self._page_size
        if more:
            next_state = {"page": page + 1, "since": since, "newest": newest}
        else:
            moved = iso_z(parse_time(newest), minus_s=self._lag) if newest else since
            next_state = {"page": 1, "since": moved, "newest": newest}
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=encode_cursor(next_state),
                          has_more=more)

    @staticmethod
    def parse_annotation(project_id: str, task: Mapping[str, Any], annotation: Any) -> VendorJudgment | MalformedRecord:
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        raw = {"project": project_id, "task_id": task.get("id"), "external_id": data.get("external_id"),
               "annotation": annotation}
        if not isinstance(annotation, dict):
            return malformed(raw, "annotation is not a JSON object")
        if annotation.get("was_cancelled"):
            return malformed(raw, "the rater skipped this task (was_cancelled); no judgment")
        key = annotation.get("unique_id") or annotation.get("id")
        rater = annotation.get("completed_by")
        if isinstance(rater, dict):
            rater = rater.get("id")
        if not key or rater is None or not data.get("external_id"):
            return malformed(raw, "annotation has no unique_id/id or no completed_by, or the task no external_id")
        label = parse_result(str(data.get("kind", "pairwise")), annotation.get("result"))
        if label is None:
            return malformed(raw, f"annotation result holds no readable {data.get('kind', 'pairwise')} answer")
        try:
            submitted = parse_time(annotation.get("created_at"))
        except ValueError:
            return malformed(raw, f"created_at {annotation.get('created_at')!r} is not a time")
        lead = annotation.get("lead_time")
        try:
            started = submitted - timedelta(seconds=float(lead)) if isinstance(lead, int | float) else None
        except (OverflowError, ValueError):  # nan, inf or out of range: the time is unknown, not the judgment
            started = None
        return VendorJudgment(vendor_judgment_id=f"ls:{project_id}:{key}", item_id=str(data["external_id"]),
                              rater_id=f"ls-user:{rater}", label=label, submitted_at=submitted, started_at=started,
                              raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        p = self._call("GET", f"/api/projects/{ref.vendor_batch_id}/").json()
        for task in list(self._iter_tasks(ref.vendor_batch_id, fields="task_only")):
            if not task.get("total_annotations") and not task.get("annotations"):
                self._call("DELETE", f"/api/tasks/{task['id']}/", ok=(404,))
        finished = p.get("task_number") and p.get("finished_task_number", 0) >= p.get("task_number", 0)
        if not finished and CANCELLED_MARK not in (p.get("description") or ""):
            self._call("PATCH", f"/api/projects/{ref.vendor_batch_id}/",
                       json={"description": f"{p.get('description') or ''} {CANCELLED_MARK}".strip()})

    # -- webhooks -----------------------------------------------------------------------------------------

    def register_webhook(self, ref: VendorBatchRef, url: str, *, secret: str | None = None) -> int:
        """Ask LS to POST ANNOTATION_CREATED/UPDATED for this project to ``url`` with a static secret header."""
        body = {"project": int(ref.vendor_batch_id), "url": url, "send_payload": True, "send_for_all_actions": False,
                "actions": ["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"],
                "headers": {SECRET_HEADER: secret or self._secret or ""}, "is_active": True}
        return int(self._call("POST", "/api/webhooks/", json=body).json()["id"])

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        verify_static_header(headers, SECRET_HEADER, self._secret or "", vendor=self.name)
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise WebhookRejected("label_studio webhook rejected: unreadable body", vendor=self.name) from exc
        project = payload.get("project") or {}
        task = payload.get("task") or {}
        return [WebhookEvent(vendor=self.name, kind=str(payload.get("action")),
                             vendor_batch_id=str(project.get("id")) if project.get("id") is not None else None,
                             vendor_task_id=str(task.get("id")) if task.get("id") is not None else None,
                             raw={"action": payload.get("action"), "task": task.get("id")})]
