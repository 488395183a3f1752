"""Label Studio specifics against the live server: ranking, pagination + since cursor, webhooks, no duplicate import."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from connectors.base import BatchRequest, JudgmentKind, TaskSpec, VendorBatchRef
from connectors.errors import WebhookRejected
from connectors.fakes.common import FakeVendor, serve_in_thread
from connectors.fakes.label_studio_crowd import LabelStudioCrowd
from connectors.label_studio import LabelStudioConnector

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _request(kind: JudgmentKind, n: int, k: int, raters: int = 3) -> BatchRequest:
    tasks = tuple(TaskSpec(item_id=f"i{i}", prompt=f"prompt {i}", responses=tuple(f"resp {i}/{r}" for r in range(k)))
                  for i in range(n))
    return BatchRequest(batch_id=str(uuid.uuid4()), idempotency_key=f"cb-{uuid.uuid4().hex}", campaign_id="c",
                        kind=kind, instructions="pick", raters_per_item=raters, tasks=tasks)


def _fetch_all(conn: LabelStudioConnector, ref: VendorBatchRef, cursor: str | None = None) -> tuple[list[Any], str | None, int]:
    out, pages = [], 0
    while True:
        page = conn.fetch_judgments(ref, cursor)
        out += page.judgments
        cursor, pages = page.cursor, pages + 1
        assert not page.malformed
        if not page.has_more:
            return out, cursor, pages


def test_ranking_pagination_and_no_duplicate_import(label_studio_server: Any) -> None:
    server = label_studio_server
    conn = LabelStudioConnector.from_options({"base_url": server.url, "api_key": server.api_key, "page_size": 2,
                                              "since_lag_s": 0})
    req = _request(JudgmentKind.ranking, n=5, k=3)
    ref = conn.submit_batch(req)
    again = conn.submit_batch(req)  # LS import is not idempotent: the connector must not import twice
    assert ref.created and not again.created and again.vendor_batch_id == ref.vendor_batch_id
    assert conn.poll(ref).tasks_total == 5
    crowd = LabelStudioCrowd(server.url, server.api_key, n_raters=3)
    try:
        crowd.watch(ref.vendor_batch_id)
        crowd.step()
        status = conn.poll(ref)
        assert status.state.value == "completed" and status.judgments_done == 15
        judgments, cursor, pages = _fetch_all(conn, ref)
        assert pages == 3  # 5 tasks, 2 per page; the page past the end answers 404 and ends the traversal
        assert len(judgments) == 15 and len({j.vendor_judgment_id for j in judgments}) == 15
        assert {j.item_id for j in judgments} == {f"i{i}" for i in range(5)}
        assert len({j.rater_id for j in judgments}) == 3
        assert all(sorted(j.label.split(">")) == ["A", "B", "C"] for j in judgments)
        assert all(j.started_at is not None and j.started_at < j.submitted_at for j in judgments)
        # since-cursor: nothing changed -> nothing returned; one more annotation -> only that task comes back
        time.sleep(1.1)
        assert _fetch_all(conn, ref, cursor)[0] == []
        task = httpx.get(f"{server.url}/api/tasks/", params={"project": ref.vendor_batch_id, "page_size": 1},
                         headers={"Authorization": f"Token {server.api_key}"}).json()["tasks"][0]
        extra = LabelStudioCrowd(server.url, server.api_key, n_raters=1)
        extra.client.post(f"/api/tasks/{task['id']}/annotations/", json={
            "completed_by": extra.raters[0], "result": [{"from_name": "rank", "to_name": "responses", "type": "ranker",
                                                         "value": {"ranker": {"rank": ["C", "B", "A"]}}}]}).raise_for_status()
        extra.stop()
        fresh, _, _ = _fetch_all(conn, ref, cursor)
        assert {j.item_id for j in fresh} == {task["data"]["external_id"]} and len(fresh) == 4
    finally:
        crowd.stop()


def test_webhook_to_a_local_listener_is_a_verified_hint(label_studio_server: Any) -> None:
    server = label_studio_server
    conn = LabelStudioConnector.from_options({"base_url": server.url, "api_key": server.api_key,
                                              "webhook_secret": "s3cret-hook"})
    received: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/ls-hook")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((dict(request.headers), await request.body()))
        return {"ok": True}

    listener_vendor = FakeVendor("listener", "-")
    with serve_in_thread(app, listener_vendor) as listener:
        ref = conn.submit_batch(_request(JudgmentKind.pairwise, n=2, k=2, raters=2))
        conn.register_webhook(ref, f"{listener.url}/ls-hook")
        crowd = LabelStudioCrowd(server.url, server.api_key, n_raters=2)
        crowd.watch(ref.vendor_batch_id)
        crowd.step()
        crowd.stop()
        deadline = time.monotonic() + 10
        while len(received) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(received) == 4  # one ANNOTATION_CREATED per annotation (inline, best effort)
    events = [e for headers, body in received for e in conn.parse_webhook(headers, body)]
    assert {e.kind for e in events} == {"ANNOTATION_CREATED"}
    assert {e.vendor_batch_id for e in events} == {ref.vendor_batch_id}
    headers, body = received[0]
    with pytest.raises(WebhookRejected):
        conn.parse_webhook({**headers, "x-crowdbridge-hook-secret": "wrong"}, body)
    judgments, _, _ = _fetch_all(conn, ref)  # the hint is followed by a poll: that is where results come from
    assert len(judgments) == 4


def test_personal_access_token_auth(label_studio_server: Any) -> None:
    """A PAT (JWT refresh token) is exchanged for 5-minute access tokens by the connector."""
    server = label_studio_server
    headers = {"Authorization": f"Token {server.api_key}"}
    pat = httpx.post(f"{server.url}/api/token/", headers=headers, timeout=30)
    if pat.status_code == 409:  # one PAT per user: revoke the old one (label-studio.md §3)
        for old in httpx.get(f"{server.url}/api/token/", headers=headers, timeout=30).json():
            httpx.post(f"{server.url}/api/token/blacklist/", headers=headers, timeout=30,
                       json={"refresh": old["token"]})
        pat = httpx.post(f"{server.url}/api/token/", headers=headers, timeout=30)
    assert pat.status_code in (200, 201), pat.text
    conn = LabelStudioConnector.from_options({"base_url": server.url, "api_key": pat.json()["token"],
                                              "auth_scheme": "pat"})
    ref = conn.submit_batch(_request(JudgmentKind.pairwise, n=1, k=2))
    assert conn.poll(ref).tasks_total == 1
