"""Surge AI: one project per batch (``num_workers_per_task`` = raters), tasks bulk-created, per-rater responses.

Surge has no idempotency key, so the project is named ``crowdbridge <idempotency key>`` and a submit
first looks for that project (``GET /projects?page=``) and for the tasks already in it (each task's
fields carry ``crowdbridge_item_id``): a retry after a crash or a 5xx creates only what is missing,
then launches. Results: ``GET /projects/{id}/tasks?page&per_page`` (bare lists; an empty page is the
end). The cursor is the first page not yet complete: complete pages are never read again, the
current one is re-read until every task has all its responses (the unique key absorbs re-reads).
Cost: ``payment_per_response`` (USD) on each judgment. Surge's ``callback_url`` auth is undocumented,
so webhooks are not claimed.
"""

from __future__ import annotations

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
    response_letter,
)
from connectors.http import build_client, request
from connectors.mapping import dig, decode_cursor, encode_cursor, malformed, option_labels, parse_time

__all__ = ["SurgeConnector"]

QUESTION = "Which response is better?"


class SurgeConnector:
    name: ClassVar[str] = "surge"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=False, idempotent_submit=False, cancel=True, cost=True)

    def __init__(self, client: httpx.Client, *, page_size: int = 100, callback_url: str | None = None) -> None:
        self._client = client
        self._page_size = page_size
        self._callback_url = callback_url

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> SurgeConnector:
        client = build_client(options.get("base_url") or "https://app.surgehq.ai/api",
                              auth=httpx.BasicAuth(str(options.get("api_key") or ""), ""),
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, page_size=int(options.get("page_size", 100)), callback_url=options.get("callback_url"))

    def _get(self, url: str, **params: Any) -> Any:
        return request(self._client, "GET", url, vendor=self.name, params=params or None).json()

    def _find_project(self, name: str) -> dict[str, Any] | None:
        page = 1
        while True:
            rows = self._get("/projects", page=page)
            for project in rows:
                if project.get("name") == name:
                    return project
            if len(rows) < 100:
                return None
            page += 1

    def _tasks(self, project_id: str) -> list[dict[str, Any]]:
        out, page = [], 1
        while True:
            rows = self._get(f"/projects/{project_id}/tasks", page=page, per_page=self._page_size)
            out += rows
            if len(rows) < self._page_size:
                return out
            page += 1

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        name = f"crowdbridge {req.idempotency_key}"
        project = self._find_project(name)
        created = project is None
        if project is None:
            if req.kind is JudgmentKind.ranking:
                question = {"type": "ranking", "text": QUESTION, "options": [f"Response {response_letter(i)}"
                            for i in range(max(len(t.responses) for t in req.tasks))], "allow_ranking_ties": False}
            else:
                question = {"type": "multiple_choice", "text": QUESTION,
                            "options": list(option_labels(req.kind, req.rating_scale))}
            body = {"name": name, "instructions": req.instructions, "questions": [question],
                    "num_workers_per_task": req.raters_per_item, "payment_per_response": req.reward_per_judgment,
                    "callback_url": req.callback_url or self._callback_url, "tags": [req.kind.value, "crowdbridge"],
                    "fields_template": "{{prompt}}", "description": f"crowdbridge batch {req.batch_id}"}
            project = request(self._client, "POST", "/projects", vendor=self.name, batch_id=req.batch_id,
                              json=body).json()
        pid = project["id"]
        have = {t.get("fields", {}).get("crowdbridge_item_id") for t in self._tasks(pid)}
        missing = [{"crowdbridge_item_id": t.item_id, "prompt": t.prompt,
                    **{f"response_{response_letter(i).lower()}": r for i, r in enumerate(t.responses)}}
                   for t in req.tasks if t.item_id not in have]
        if missing:
            request(self._client, "POST", f"/projects/{pid}/tasks/create_tasks", vendor=self.name,
                    batch_id=req.batch_id, json={"tasks": missing, "launch": False})
        if project.get("status") == "unlaunched":
            request(self._client, "PUT", f"/projects/{pid}/launch", vendor=self.name, batch_id=req.batch_id)
        return VendorBatchRef(vendor=self.name, vendor_batch_id=pid, created=created)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        project = self._get(f"/projects/{ref.vendor_batch_id}")
        overlap = int(project.get("num_workers_per_task") or 1)
        total = int(project.get("num_tasks") or 0)
        done = int(project.get("num_responses") or 0)
        states = {"cancelled": BatchState.cancelled, "completed": BatchState.completed,
                  "unlaunched": BatchState.pending}
        return VendorBatchStatus(state=states.get(project.get("status"), BatchState.in_progress), tasks_total=total,
                                 judgments_expected=total * overlap, judgments_done=min(done, total * overlap))

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        page = int(decode_cursor(cursor).get("page", 1))
        project = self._get(f"/projects/{ref.vendor_batch_id}")
        overlap = int(project.get("num_workers_per_task") or 1)
        rows = self._get(f"/projects/{ref.vendor_batch_id}/tasks", page=page, per_page=self._page_size)
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        for task in rows:
            for response in task.get("responses") or []:
                parsed = self.parse_response(project, task, response)
                (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
        complete = bool(rows) and all(len(t.get("responses") or []) >= overlap for t in rows)
        full = len(rows) == self._page_size
        next_page = page + 1 if complete and full else page
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad),
                          cursor=encode_cursor({"page": next_page}), has_more=complete and full)

    @staticmethod
    def parse_response(project: Mapping[str, Any], task: Mapping[str, Any], response: Any) -> VendorJudgment | MalformedRecord:
        raw = {"task_id": task.get("id"), "fields": task.get("fields"), "response": response}
        if not isinstance(response, dict) or not response.get("id") or not response.get("worker_id"):
            return malformed(raw, "response has no id or no worker_id")
        item_id = dig(task, "fields", "crowdbridge_item_id")
        if not item_id:
            return malformed(raw, "task fields carry no crowdbridge_item_id")
        question = (project.get("questions") or [{}])[0]
        data = response.get("data") or {}
        answer = data.get(question.get("text"), data.get(question.get("id")))
        label: str | None = None
        if question.get("type") == "ranking" and isinstance(answer, list):
            by_text = {v: k.removeprefix("response_").upper() for k, v in (task.get("fields") or {}).items()
                       if k.startswith("response_")}
            by_option = {o: o.removeprefix("Response ") for o in question.get("options") or []}
            letters = [by_text.get(a) or by_option.get(a) for a in answer]
            label = ">".join(letters) if all(letters) else None  # type: ignore[arg-type]
        elif isinstance(answer, str):
            kinds = {"pairwise": JudgmentKind.pairwise, "rating": JudgmentKind.rating, "binary": JudgmentKind.binary}
            kind = kinds.get((project.get("tags") or ["pairwise"])[0], JudgmentKind.pairwise)
            label = option_labels(kind, len(question.get("options") or []) or 5).get(answer)
        if label is None:
            return malformed(raw, f"answer {answer!r} is not one of the question's options")
        try:
            submitted = parse_time(response.get("completed_at"))
        except ValueError:
            return malformed(raw, f"completed_at {response.get('completed_at')!r} is not a time")
        spent = response.get("time_spent_in_secs")
        started = submitted - timedelta(seconds=float(spent)) if isinstance(spent, int | float) else None
        cost = project.get("payment_per_response")
        return VendorJudgment(vendor_judgment_id=f"surge:{response['id']}", item_id=str(item_id),
                              rater_id=f"surge:{response['worker_id']}", label=label, submitted_at=submitted,
                              started_at=started, cost=float(cost) if isinstance(cost, int | float) else None, raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        project = self._get(f"/projects/{ref.vendor_batch_id}")
        if project.get("status") in ("cancelled", "completed"):
            return
        request(self._client, "PUT", f"/projects/{ref.vendor_batch_id}/cancel", vendor=self.name)
