"""Simulated raters for a REAL Label Studio: distinct LS users who post annotations over the API.

:class:`LabelStudioCrowd` creates ``n_raters`` users (``POST /api/users/``) and, each ``step()``, gives
every unfinished task of the watched projects its missing annotations, one per distinct rater, each
posted with ``completed_by`` = that rater (the admin may attribute annotations; label-studio.md §4.3).
Answers come from :func:`connectors.fakes.common.canonical_answer`, in each control's own LS shape.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx

from connectors.fakes.common import canonical_answer

__all__ = ["LabelStudioCrowd", "ls_result"]


def ls_result(kind: str, label: str) -> list[dict[str, Any]]:
    """A canonical label as the ``result`` LS stores for this project's controls."""
    if kind == "pairwise":
        if label == "tie":
            return [{"from_name": "tie", "to_name": "prompt", "type": "choices", "value": {"choices": ["tie"]}}]
        return [{"from_name": "preference", "to_name": "preference", "type": "pairwise",
                 "value": {"selected": "left" if label == "A" else "right"}}]
    if kind == "ranking":
        return [{"from_name": "rank", "to_name": "responses", "type": "ranker",
                 "value": {"ranker": {"rank": label.split(">")}}}]
    if kind == "rating":
        return [{"from_name": "rating", "to_name": "response_a", "type": "rating", "value": {"rating": int(label)}}]
    return [{"from_name": "verdict", "to_name": "response_a", "type": "choices", "value": {"choices": [label]}}]


class LabelStudioCrowd:
    def __init__(self, url: str, token: str, *, n_raters: int = 5, tag: str | None = None,
                 title_prefix: str | None = None) -> None:
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60.0)
        tag = tag or uuid.uuid4().hex[:6]
        self.raters: list[int] = []
        for i in range(n_raters):
            response = self.client.post("/api/users/", json={"email": f"rater{i}-{tag}@vendor.example",
                                                             "username": f"rater{i}_{tag}", "first_name": f"Rater{i}"})
            response.raise_for_status()
            self.raters.append(int(response.json()["id"]))
        self.projects: set[int] = set()
        self.title_prefix = title_prefix  # also work on projects created from now on with this title prefix
        self._baseline = max((p["id"] for p in self.client.get("/api/projects/", params={"page_size": 1000})
                              .json().get("results", [])), default=0)
        self.posted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, project_id: int | str) -> None:
        self.projects.add(int(project_id))

    def discover(self) -> None:
        if self.title_prefix is None:
            return
        for project in self.client.get("/api/projects/", params={"page_size": 1000}).json().get("results", []):
            if project["id"] > self._baseline and str(project.get("title", "")).startswith(self.title_prefix):
                self.projects.add(int(project["id"]))

    def step(self) -> int:
        self.discover()
        posted = 0
        for pid in list(self.projects):
            overlap = int(self.client.get(f"/api/projects/{pid}/").json().get("maximum_annotations") or 1)
            page = 1
            while True:
                response = self.client.get("/api/tasks/", params={"project": pid, "page": page, "page_size": 100,
                                                                   "fields": "all"})
                if response.status_code == 404:
                    break
                tasks = response.json().get("tasks", [])
                for task in tasks:
                    done = {a.get("completed_by") for a in task.get("annotations") or []}
                    kind = (task.get("data") or {}).get("kind", "pairwise")
                    n = len((task.get("data") or {}).get("responses") or [0, 0])
                    for rater in self.raters:
                        if len(done) >= overlap:
                            break
                        if rater in done:
                            continue
                        label = canonical_answer(kind, n, f"{pid}/{task['id']}", str(rater))
                        if kind == "ranking":
                            label = ">".join(sorted(label.split(">"), key=lambda c: hash((c, rater, task["id"]))))
                        self.client.post(f"/api/tasks/{task['id']}/annotations/",
                                         json={"completed_by": rater, "lead_time": 12.5,
                                               "result": ls_result(kind, label)}).raise_for_status()
                        done.add(rater)
                        posted += 1
                if len(tasks) < 100:
                    break
                page += 1
        self.posted += posted
        return posted

    def start(self, interval_s: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.step()
                except httpx.HTTPError:
                    pass

        self._thread = threading.Thread(target=loop, daemon=True, name="ls-crowd")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        self.client.close()
