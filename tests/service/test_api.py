"""The REST API on a real run (PostgreSQL, simulated vendor over HTTP): lifecycle, uploads, pagination,
pseudonyms, exports, errors, webhooks, metrics, the Python client and the CLI commands."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from connectors.base import Capabilities, WebhookEvent
from connectors.errors import WebhookRejected
from connectors.registry import register
from connectors.simulated.client import SimulatedConnector
from service.api import create_app
from service.api.config import ApiConfig
from service.domain import outbox
from service.domain.batches import push_batch
from service.storage.db import session_scope
from service.storage.models import Batch, OutboxMessage
from service.storage.models_api import ApiToken
from service.storage.models_api import WebhookEvent as StoredEvent
from tests.service.conftest import World
from tests.support import pairwise_items

pytestmark = pytest.mark.integration


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(i) + "\n" for i in items).encode()


def _new_campaign(world: World, **spec: Any) -> str:
    name = f"api-{uuid.uuid4().hex[:8]}"
    response = world.client.post("/api/v1/campaigns", json={"name": name, "raters_per_item": 2, **spec},
                                 headers=world.auth("operator"))
    assert response.status_code == 201, response.text
    return name


def test_errors_are_json_with_a_stable_code(world: World) -> None:
    h = world.auth("auditor")
    missing = world.client.get("/api/v1/campaigns/nope", headers=h)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "campaign nope not found"}}
    bad = world.client.get(f"/api/v1/campaigns/{world.run.name}/judgments?limit=0", headers=h)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    cursor = world.client.get(f"/api/v1/campaigns/{world.run.name}/judgments?cursor=zzz", headers=h)
    assert cursor.status_code == 422 and cursor.json()["error"]["code"] == "invalid_input"
    unknown = world.client.get("/api/v1/nothing-here", headers=h)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    vendor = world.client.post("/api/v1/campaigns", json={"name": "x-unknown-vendor", "vendor": "acme"},
                               headers=world.auth("operator"))
    assert vendor.status_code == 404 and vendor.json()["error"]["code"] == "unknown_vendor"
    extra = world.client.post("/api/v1/campaigns", json={"name": "x-unknown-extra", "extra_vendors": ["acme"]},
                              headers=world.auth("operator"))
    assert extra.status_code == 404 and "acme" in extra.json()["error"]["message"]
    routed = world.client.post("/api/v1/campaigns", json={"name": "x-extra", "extra_vendors": ["file", "file"]},
                               headers=world.auth("operator"))
    assert routed.status_code == 201 and routed.json()["extra_vendors"] == ["file"]


def test_campaign_lifecycle_with_jsonl_csv_and_parquet_uploads(world: World) -> None:
    op = world.auth("operator")
    name = _new_campaign(world, budget_usd=100)
    items = pairwise_items(9)
    up = world.client.post(f"/api/v1/campaigns/{name}/items", content=_jsonl(items[:3]),
                           headers={**op, "Content-Type": "application/x-ndjson"})
    assert up.status_code == 201 and up.json()["items_added"] == 3, up.text
    csv = pd.DataFrame([{"id": i["id"], "prompt": i["prompt"], "response_1": i["responses"][0]["text"],
                         "response_2": i["responses"][1]["text"]} for i in items[3:6]])
    up = world.client.post(f"/api/v1/campaigns/{name}/items?format=csv", content=csv.to_csv(index=False), headers=op)
    assert up.status_code == 201 and up.json()["items_added"] == 3, up.text
    buffer = io.BytesIO()
    csv.assign(id=[i["id"] for i in items[6:9]]).to_parquet(buffer)
    up = world.client.post(f"/api/v1/campaigns/{name}/items?format=parquet", content=buffer.getvalue(), headers=op)
    assert up.status_code == 201 and up.json()["items_added"] == 3, up.text
    dup = world.client.post(f"/api/v1/campaigns/{name}/items?format=jsonl", content=_jsonl(items[:1]), headers=op)
    assert dup.status_code == 422 and "already exist" in dup.json()["error"]["message"]
    junk = world.client.post(f"/api/v1/campaigns/{name}/items?format=parquet", content=b"not parquet", headers=op)
    assert junk.status_code == 422 and junk.json()["error"]["code"] == "invalid_input"

    patched = world.client.patch(f"/api/v1/campaigns/{name}", json={"budget_usd": 50}, headers=op)
    assert patched.status_code == 200 and patched.json()["budget_usd"] == 50
    started = world.client.post(f"/api/v1/campaigns/{name}/start", headers=op)
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert started.json()["items"] == 9
    again = world.client.post(f"/api/v1/campaigns/{name}/start", headers=op)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    batches = world.client.get(f"/api/v1/campaigns/{name}/batches", headers=world.auth("auditor")).json()
    assert sum(b["n_items"] for b in batches) == 9 and {b["status"] for b in batches} == {"pending"}
    assert world.client.post(f"/api/v1/campaigns/{name}/pause", headers=op).json()["status"] == "paused"
    cancelled = world.client.post(f"/api/v1/campaigns/{name}/cancel", headers=op).json()
    assert cancelled["campaign"]["status"] == "cancelled" and cancelled["cancelled_batches"] == len(batches)


def test_uploads_are_streamed_and_refused_above_the_limit(world: World) -> None:
    name = _new_campaign(world)
    small = create_app(world.run.settings, ApiConfig(max_upload_bytes=2000))
    body = _jsonl(pairwise_items(40))
    assert len(body) > 2000
    with TestClient(small) as client:
        declared = client.post(f"/api/v1/campaigns/{name}/items?format=jsonl", content=body,
                               headers=world.auth("operator"))
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
            for start in range(0, len(body), 500):
                yield body[start:start + 500]

        streamed = client.post(f"/api/v1/campaigns/{name}/items?format=jsonl", content=chunks(),
                               headers=world.auth("operator"))
        assert streamed.status_code == 413
        assert client.get(f"/api/v1/campaigns/{name}", headers=world.auth("auditor")).json()["items"] == 0


def _all_pages(world: World, scope: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    rows, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(f"/api/v1/campaigns/{world.run.name}/judgments", params=query,
                                headers=world.auth(scope)).json()
        rows += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return rows


def test_cursor_pagination_returns_every_judgment_once_in_order(world: World) -> None:
    total = world.client.get(f"/api/v1/campaigns/{world.run.name}", headers=world.auth("auditor")).json()["judgments"]
    rows = _all_pages(world, "operator", limit=17)
    assert len(rows) == total >= world.run.n_items * world.run.raters
    assert len({r["id"] for r in rows}) == total
    keys = [(r["received_at"], r["id"]) for r in rows]
    assert keys == sorted(keys)
    rater = rows[0]["rater_id"]
    mine = _all_pages(world, "operator", limit=5, rater_id=rater)
    assert mine and all(r["rater_id"] == rater for r in mine)
    assert len(mine) == sum(r["rater_id"] == rater for r in rows)


def test_auditors_see_pseudonyms_and_no_raw_payloads(world: World) -> None:
    plain = _all_pages(world, "operator", limit=500)
    masked = _all_pages(world, "auditor", limit=500)
    assert [r["id"] for r in plain] == [r["id"] for r in masked]
    assert all(r["raw"] for r in plain) and all(r["raw"] is None for r in masked)
    assert all(r["rater_id"].startswith("r_") and len(r["rater_id"]) == 18 for r in masked)
    mapping = {p["rater_id"]: m["rater_id"] for p, m in zip(plain, masked, strict=True)}
    assert len(set(mapping.values())) == len(mapping)  # one pseudonym per rater, stable across rows
    assert not set(mapping) & set(mapping.values())
    one = next(iter(mapping.values()))
    filtered = _all_pages(world, "auditor", limit=500, rater_id=one)
    assert filtered and {r["rater_id"] for r in filtered} == {one}
    agreement = world.client.get(f"/api/v1/campaigns/{world.run.name}/agreement?scope=rater",
                                 headers=world.auth("auditor")).json()
    assert agreement and all(a["scope_key"] in set(mapping.values()) for a in agreement)
    export = world.client.get(f"/api/v1/campaigns/{world.run.name}/judgments/export?format=jsonl",
                              headers=world.auth("auditor")).text
    assert not any(real in export for real in mapping)


def test_tokens_are_stored_hashed(world: World) -> None:
    created = world.client.post("/api/v1/tokens", json={"name": "hash-check", "scope": "auditor"},
                                headers=world.auth("admin"))
    assert created.status_code == 201
    plain = created.json()["token"]
    with session_scope(world.run.settings.resolved_database_url) as s:
        row = s.get(ApiToken, uuid.UUID(created.json()["id"]))
        assert row is not None and row.token_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert plain not in json.dumps(row.model_dump(mode="json"))
    listed = world.client.get("/api/v1/tokens", headers=world.auth("admin")).json()
    assert all("token" not in t for t in listed)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports(world: World, fmt: str) -> None:
    h = world.auth("operator")
    total = world.client.get(f"/api/v1/campaigns/{world.run.name}", headers=h).json()
    consensus = world.client.get(f"/api/v1/campaigns/{world.run.name}/consensus?limit=1000", headers=h).json()
    assert consensus["next_cursor"] is None and len(consensus["items"]) >= 2 * world.run.n_items  # mv, ds, ...
    for what, expected in (("judgments", total["judgments"]), ("consensus", len(consensus["items"]))):
        response = world.client.get(f"/api/v1/campaigns/{world.run.name}/{what}/export?format={fmt}", headers=h)
        assert response.status_code == 200
        reader = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                  "jsonl": lambda b: pd.read_json(b, lines=True)}[fmt]
        frame = reader(io.BytesIO(response.content))
        assert len(frame) == expected


def test_consensus_models_cards_and_jobs(world: World) -> None:
    h = world.auth("auditor")
    page = world.client.get(f"/api/v1/campaigns/{world.run.name}/consensus?method=ds&limit=1000", headers=h).json()
    assert len(page["items"]) == world.run.n_items and page["next_cursor"] is None
    models = world.client.get("/api/v1/models", headers=h).json()
    assert len(models) == 1 and 0 <= models[0]["metrics"]["heldout_accuracy"] <= 1
    card = world.client.get(f"/api/v1/models/{models[0]['id']}/card", headers=h).json()
    assert card["dataset"]["judgments"] > 0 and card["dataset"]["vendors"]["simulated"]["raters"] > 0
    assert card["campaign"]["name"] == world.run.name
    jobs = world.client.get(f"/api/v1/retrain-jobs?campaign={world.run.name}", headers=h).json()
    assert [j["status"] for j in jobs] == ["succeeded"]
    audit = world.client.get(f"/api/v1/campaigns/{world.run.name}/audit", headers=h)
    assert audit.status_code == 200 and audit.text.count("<svg") == 3 and "sim-rater-" not in audit.text


def test_healthz_and_metrics(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    text = world.client.get("/metrics", headers=world.auth("auditor")).text
    for family in ("crowdbridge_outbox_pending", "crowdbridge_batches{state=\"completed\"}",
                   "crowdbridge_judgments_ingested_total{vendor=\"simulated\"}", "crowdbridge_turnaround_seconds_bucket",
                   "crowdbridge_quarantined_total", "crowdbridge_vendor_errors_total", "crowdbridge_sla_breach"):
        assert family in text, family


class SignedConnector(SimulatedConnector):
    """The simulated vendor plus a signed callback: header x-test-signature must equal sha256(body)."""

    name: ClassVar[str] = "signed-test"
    capabilities: ClassVar[Capabilities] = Capabilities(per_rater_identity=True, webhooks=True,
                                                        idempotent_submit=True, cancel=True, cost=True)

    def parse_webhook(self, headers: dict[str, str], body: bytes) -> list[WebhookEvent]:
        if headers.get("x-test-signature") != hashlib.sha256(body).hexdigest():
            raise WebhookRejected("signed-test webhook rejected: bad signature", vendor=self.name)
        return [WebhookEvent(vendor=self.name, kind="batch.updated",
                             vendor_batch_id=json.loads(body).get("batch"))]


def test_webhooks_store_the_event_and_make_the_batch_due(world: World) -> None:
    settings = world.run.settings
    name = _new_campaign(world)
    world.client.post(f"/api/v1/campaigns/{name}/items?format=jsonl", content=_jsonl(pairwise_items(3)),
                      headers=world.auth("operator"))
    world.client.post(f"/api/v1/campaigns/{name}/start", headers=world.auth("operator"))
    batch = world.client.get(f"/api/v1/campaigns/{name}/batches", headers=world.auth("auditor")).json()[0]
    with session_scope(settings.resolved_database_url) as s:
        push_batch(s, settings, batch["id"])
        key = s.get(Batch, uuid.UUID(batch["id"])).idempotency_key  # type: ignore[union-attr]
    hint = world.client.post("/webhooks/simulated", json={"event": "batch.progress", "external_id": key})
    assert hint.status_code == 202 and hint.json()["verified"] is None
    assert hint.json()["outcome"] == "poll_requested:1"
    stray = world.client.post("/webhooks/simulated", content=b"not json")
    assert stray.status_code == 202 and stray.json()["outcome"] == "no_batch"
    assert world.client.post("/webhooks/acme", json={}).json()["error"]["code"] == "unknown_vendor"
    with session_scope(settings.resolved_database_url) as s:
        polls = s.exec(select(OutboxMessage).where(OutboxMessage.task == outbox.POLL_BATCH)).all()
        assert batch["id"] in {m.args[0] for m in polls}
        stored = s.get(StoredEvent, uuid.UUID(hint.json()["id"]))
        assert stored is not None and key in stored.body

    register("signed-test", SignedConnector, clobber=True)
    body = json.dumps({"batch": "sb_unknown"}).encode()
    forged = world.client.post("/webhooks/signed-test", content=body, headers={"x-test-signature": "0" * 64})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "webhook_rejected"
    signed = world.client.post("/webhooks/signed-test", content=body,
                               headers={"x-test-signature": hashlib.sha256(body).hexdigest()})
    assert signed.status_code == 202 and signed.json()["verified"] is True
    replayed = world.client.post("/webhooks/signed-test", content=body,
                                 headers={"x-test-signature": hashlib.sha256(body).hexdigest()})
    assert replayed.status_code == 202 and replayed.json()["outcome"] == "replay"  # acted on once
    with session_scope(settings.resolved_database_url) as s:
        events = s.exec(select(StoredEvent).where(StoredEvent.vendor == "signed-test")).all()
        assert len(events) == 1  # the forged one was not stored, the replay not twice
        assert events[0].delivery_key == f"sha256:{hashlib.sha256(body).hexdigest()}"


def test_python_client_returns_dataframes(world: World) -> None:
    from service.api import start_api_in_background
    from service.client import Client

    handle = start_api_in_background(world.run.settings, admin_token="bg-admin")
    assert handle.token and handle.dashboard_url.endswith("/dashboard")
    try:
        _client_checks(world, handle.url)
        with Client(handle.url, handle.token) as admin:
            assert len(admin.campaigns()) >= 1
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


def _client_checks(world: World, url: str) -> None:
    from service.client import ApiError, Client

    with Client(url, world.tokens["auditor"]) as cb:
        judgments = cb.judgments(world.run.name, page_size=50)
        assert len(judgments) == cb.campaign(world.run.name)["judgments"]
        assert str(judgments["submitted_at"].dtype).startswith("datetime64")
        assert len(cb.consensus(world.run.name, method="ds")) == world.run.n_items
        analytics = cb.analytics(campaign=world.run.name)
        assert list(analytics["vendor"]) == ["simulated"]
        with pytest.raises(ApiError) as err:
            cb.create_campaign("client-made")
        assert err.value.status == 403 and err.value.code == "forbidden"


def test_cli_tokens_and_audit(world: World, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from service.cli import app
    from service.settings import get_settings

    monkeypatch.setenv("CROWDBRIDGE_DATABASE_URL", world.run.settings.resolved_database_url)
    monkeypatch.setenv("CROWDBRIDGE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        created = runner.invoke(app, ["tokens", "create", "cli-made", "--scope", "operator", "--json"])
        assert created.exit_code == 0, created.output
        token = json.loads(created.stdout)["token"]
        assert world.client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert runner.invoke(app, ["tokens", "revoke", "cli-made"]).exit_code == 0
        assert world.client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        report = tmp_path / "report.html"
        result = runner.invoke(app, ["audit", world.run.name, "--out", str(report)])
        assert result.exit_code == 0, result.output
        html = report.read_text()
        assert html.count("<svg") == 3 and "Flagged raters" in html and "sim-rater-" not in html
        assert "http" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained
        listed = runner.invoke(app, ["analytics", "--campaign", world.run.name, "--json"])
        assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["vendor"] == "simulated"
    finally:
        get_settings.cache_clear()
