"""Analytics against a run whose truth is known: the simulated vendor's turnaround distribution
(``--turnaround`` x its raters' speeds, lognormal) and its price (``reward_per_judgment``)."""

from __future__ import annotations

import random
from datetime import datetime

import numpy as np
import pytest

from connectors.simulated.crowd import CrowdConfig, build_pool
from tests.service.conftest import World
from tests.service.run import REWARD, TURNAROUND_S

pytestmark = pytest.mark.integration


def _true_turnaround_quantiles(qs: tuple[float, ...]) -> list[float]:
    """The simulator's own model: due = now + lognormvariate(0, 0.6) * turnaround_s * rater.speed."""
    pool = build_pool(CrowdConfig(turnaround_s=TURNAROUND_S))
    rng = random.Random(7)
    draws = [rng.lognormvariate(0, 0.6) * TURNAROUND_S * rng.choice(pool).speed for _ in range(200_000)]
    return [float(np.quantile(draws, q)) for q in qs]


def _analytics(world: World, **params: str) -> dict:
    rows = world.client.get("/api/v1/analytics/vendors", params={"campaign": world.run.name, **params},
                            headers=world.auth("auditor")).json()
    assert [r["vendor"] for r in rows] == ["simulated"]
    return rows[0]


def test_turnaround_matches_the_vendors_true_distribution(world: World) -> None:
    row = _analytics(world)
    p50, p95 = _true_turnaround_quantiles((0.5, 0.95))
    assert row["turnaround_p50_s"] == pytest.approx(p50, rel=0.3)
    assert row["turnaround_p95_s"] == pytest.approx(p95, rel=0.45)
    assert row["turnaround_p50_s"] <= row["turnaround_p95_s"] <= row["turnaround_p99_s"]
    # and exactly what the vendor's own records say: its submitted_at minus our batch submission
    judgments = world.client.get(f"/api/v1/campaigns/{world.run.name}/judgments?limit=1000",
                                 headers=world.auth("operator")).json()["items"]
    batches = {b["id"]: datetime.fromisoformat(b["submitted_at"]).timestamp() for b in world.client.get(
        f"/api/v1/campaigns/{world.run.name}/batches", headers=world.auth("auditor")).json()}
    own = [j["raw"]["submitted_at"] - batches[j["batch_id"]] for j in judgments]
    assert row["turnaround_p50_s"] == pytest.approx(float(np.quantile(own, 0.5)), abs=1e-3)
    assert row["turnaround_p99_s"] == pytest.approx(float(np.quantile(own, 0.99)), abs=1e-3)


def test_costs_throughput_and_quality_match_the_run(world: World) -> None:
    row = _analytics(world)
    ledger = world.vendor.ledger()
    judgments = row["judgments"]
    assert judgments == ledger["judgments_produced"] >= world.run.n_items * world.run.raters
    assert row["items"] == world.run.n_items
    assert row["cost_usd"] == pytest.approx(judgments * REWARD)
    assert row["cost_per_accepted_judgment_usd"] == pytest.approx(REWARD)
    assert row["cost_per_item_usd"] == pytest.approx(judgments * REWARD / world.run.n_items)
    assert row["items_per_hour"] == pytest.approx(row["items"] / row["hours"])
    assert row["judgments_per_hour"] == pytest.approx(judgments / row["hours"])
    assert 0 < row["hours"] * 3600 < 120
    assert 1 < row["active_raters"] <= 60
    assert row["accepted_share"] == 1.0 and row["quarantined"] == 0
    assert 0.5 < row["agreement_with_consensus"] <= 1 and 0.4 < row["gold_accuracy"] <= 1
    assert row["gold_judgments"] > 0 and row["krippendorff_alpha"] is not None
    assert row["submit_attempts"] >= row["batches"] and row["submit_error_rate"] == 0.0
    future = _analytics(world, since="2999-01-01T00:00:00")
    assert future["judgments"] == 0 and future["turnaround_p50_s"] is None


def test_sla_breach_is_an_alert_and_a_metric(world: World) -> None:
    bad = world.client.put("/api/v1/sla/simulated", json={"metric": "no_such_metric", "limit": 1},
                           headers=world.auth("admin"))
    assert bad.status_code == 422
    assert world.client.put("/api/v1/sla/simulated", json={"metric": "turnaround_p95_s", "limit": 0.001},
                            headers=world.auth("admin")).status_code == 200
    try:
        alerts = _analytics(world)["alerts"]
        assert [(a["metric"], a["direction"]) for a in alerts] == [("turnaround_p95_s", "max")]
        metrics = create_metrics_text(world)
        assert 'crowdbridge_sla_breach{metric="turnaround_p95_s",vendor="simulated"} 1.0' in metrics
    finally:
        world.client.put("/api/v1/sla/simulated", json={"metric": "turnaround_p95_s", "limit": 1e9},
                         headers=world.auth("admin"))
    assert _analytics(world)["alerts"] == []


def create_metrics_text(world: World) -> str:
    from prometheus_client import generate_latest

    from service.api import create_app

    return generate_latest(create_app(world.run.settings).state.metrics_registry).decode()  # fresh, uncached
