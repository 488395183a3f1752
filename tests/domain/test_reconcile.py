"""reconcile_campaign on an in-memory SQLite database and on a fresh PostgreSQL one: auto consensus plus MV
and DS rows for every item, incremental Dawid–Skene between full refits, agreement per campaign/vendor/batch
and rater flags."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session, select

from connectors.base import JudgmentKind
from connectors.simulated.crowd import CrowdConfig, build_pool, rater_answer
from service.domain import reconcile as rec
from service.settings import Settings
from service.storage.models import (
    AgreementReport,
    Batch,
    BatchItem,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Item,
    Judgment,
)
from service.storage.types import utcnow
from tests.support import schema_session


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """Both databases: on PostgreSQL the frame, the stored posteriors and the consensus rows take the COPY
    and raw-text paths, which SQLite never reaches."""
    with schema_session(request.param) as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _campaign(session: Session, n_items: int, *, extra_rounds: int = 0) -> tuple[Campaign, list[Item]]:
    campaign = Campaign(name=f"c-{uuid.uuid4().hex[:6]}", kind=JudgmentKind.pairwise, raters_per_item=5,
                        status=CampaignStatus.running, max_extra_rounds=extra_rounds)
    session.add(campaign)
    items = [Item(campaign_id=campaign.id, external_id=f"x{i}", prompt="p") for i in range(n_items)]
    session.add_all(items)
    session.commit()
    return campaign, items


def _deliver(session: Session, campaign: Campaign, items: list[Item], *, seed: int, fast: set[str] = frozenset(),
             raters: int = 5) -> Batch:
    """One completed batch of simulated-crowd answers (truth 'A' for even items, 'B' for odd)."""
    pool = build_pool(CrowdConfig(seed=0))
    batch = Batch(campaign_id=campaign.id, vendor="simulated", raters_per_item=raters, n_items=len(items),
                  idempotency_key=uuid.uuid4().hex, status=BatchStatus.completed)
    session.add(batch)
    session.flush()
    session.add_all([BatchItem(batch_id=batch.id, item_id=i.id) for i in items])
    now = utcnow()
    for item in items:
        local = random.Random(f"{seed}/{item.external_id}")
        truth = "A" if int(item.external_id[1:]) % 2 == 0 else "B"
        for r in local.sample(pool, raters):
            secs = 1.0 if r.rater_id in fast else 40.0
            session.add(Judgment(campaign_id=campaign.id, item_id=item.id, batch_id=batch.id, vendor="simulated",
                                 vendor_judgment_id=uuid.uuid4().hex, rater_id=r.rater_id,
                                 label=rater_answer(local, r, "pairwise", truth, 2, 5, 0.03),
                                 started_at=now - timedelta(seconds=secs), submitted_at=now))
    session.commit()
    return batch


def _edit_state(session: Session, **details: object) -> None:
    """Change the stored incremental state (the chosen method, updates since the last full refit)."""
    state = session.exec(select(AgreementReport).where(AgreementReport.scope == "state")).one()
    state.details = {**state.details, **details}
    session.add(state)
    session.commit()


def _reconcile_with_full_refit(session: Session, settings: Settings, campaign: Campaign, items: list[Item]) -> None:
    """One more judgment, reconciled as the periodic full refit."""
    _edit_state(session, updates_since_full=rec.FULL_REFIT_EVERY)
    _deliver(session, campaign, items[:1], seed=3, raters=1)
    assert rec.reconcile_campaign(session, settings, campaign.id).mode == "full"


def _labels(session: Session, campaign: Campaign, method: str) -> pd.Series:
    rows = session.exec(select(ConsensusLabel.item_id, ConsensusLabel.label).where(
        ConsensusLabel.campaign_id == campaign.id).where(ConsensusLabel.method == method)).all()
    return pd.Series({str(i): lab for i, lab in rows})


def test_every_item_gets_auto_mv_and_ds_rows_and_auto_beats_nothing_worse(session: Session, settings: Settings) -> None:
    campaign, items = _campaign(session, 200)
    _deliver(session, campaign, items, seed=1)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.mode == "full" and result.items == 200 and result.method in rec.CONSENSUS_METHODS + (
        "wawa", "onecoin_ds", "mace")
    truth = pd.Series({str(i.id): "A" if int(i.external_id[1:]) % 2 == 0 else "B" for i in items})
    acc = {m: float((_labels(session, campaign, m).reindex(truth.index) == truth).mean()) for m in ("mv", "ds", "auto")}
    assert all(len(_labels(session, campaign, m)) == 200 for m in acc)
    assert acc["ds"] >= acc["mv"] - 0.01  # MAP DS no longer overfits the small-sample crowd
    assert acc["auto"] >= 0.93
    chosen = session.exec(select(AgreementReport).where(AgreementReport.metric == "consensus_method")).one()
    assert chosen.details["chosen"] == result.method and "held-out" in chosen.details["reason"]


@pytest.mark.parametrize("chosen", ["ds", "mv"])
def test_primary_rows_equal_the_chosen_methods_rows_full_and_incremental(
        session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, chosen: str) -> None:
    """When auto picks a method that is stored anyway, its rows are copies (on PostgreSQL, on the server)."""
    monkeypatch.setattr(rec, "select_method", lambda *a, **k: (chosen, {chosen: -0.5}, "picked by the test"))
    campaign, items = _campaign(session, 120)

    def rows(method: str) -> dict[str, tuple[object, ...]]:
        return {str(c.item_id): (c.label, round(c.confidence, 12), c.posterior, c.n_judgments, c.contested)
                for c in session.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign.id)
                                      .where(ConsensusLabel.method == method))}

    _deliver(session, campaign, items[:80], seed=1)
    assert rec.reconcile_campaign(session, settings, campaign.id).method == chosen
    assert rows("auto") == rows(chosen) and len(rows("auto")) == 80
    _deliver(session, campaign, items[80:], seed=2)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.mode == "incremental" and result.touched_items == 40
    assert rows("auto") == rows(chosen) and len(rows("auto")) == 120


def test_incremental_updates_touch_only_new_items_and_stay_close_to_full(session: Session, settings: Settings) -> None:
    campaign, items = _campaign(session, 240)
    _deliver(session, campaign, items[:160], seed=1)
    assert rec.reconcile_campaign(session, settings, campaign.id).mode == "full"
    before = {str(c.item_id): (c.posterior, c.computed_at) for c in session.exec(
        select(ConsensusLabel).where(ConsensusLabel.method == "ds"))}
    _deliver(session, campaign, items[160:], seed=2)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.mode == "incremental" and result.touched_items == 80
    after = {str(c.item_id): (c.posterior, c.computed_at) for c in session.exec(
        select(ConsensusLabel).where(ConsensusLabel.method == "ds"))}
    assert len(after) == 240
    untouched = [str(i.id) for i in items[:160]]
    assert all(after[t] == before[t] for t in untouched)  # rows of unreached items were not rewritten
    inc = _labels(session, campaign, "ds")
    # a full refit from scratch of the same judgments agrees on almost every label
    _reconcile_with_full_refit(session, settings, campaign, items)
    full = _labels(session, campaign, "ds")
    assert (inc.reindex(full.index) == full).mean() > 0.97


def test_incremental_rewrites_only_reached_items_of_a_refit_method(session: Session, settings: Settings) -> None:
    """With the auto choice on a method refit on the whole campaign (one-coin DS here), an incremental
    reconciliation writes new rows only for the items the new batch reached; contested items and the
    agreement follow the rows as stored."""
    campaign, items = _campaign(session, 240)
    _deliver(session, campaign, items[:160], seed=1)
    rec.reconcile_campaign(session, settings, campaign.id)
    _edit_state(session, chosen="onecoin_ds")

    def auto_rows() -> dict[str, ConsensusLabel]:
        return {str(c.item_id): c for c in session.exec(select(ConsensusLabel).where(
            ConsensusLabel.campaign_id == campaign.id).where(ConsensusLabel.method == "auto"))}

    before = {t: (c.posterior, c.computed_at) for t, c in auto_rows().items()}
    _deliver(session, campaign, items[160:], seed=2)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.mode == "incremental" and result.method == "onecoin_ds"
    after = auto_rows()
    assert len(after) == 240
    assert all((after[str(i.id)].posterior, after[str(i.id)].computed_at) == before[str(i.id)] for i in items[:160])
    assert all(str(i.id) not in before for i in items[160:])
    stored_contested = sum(c.contested for c in after.values())
    assert result.contested == stored_contested
    # the next full refit rewrites every row from one fit
    _reconcile_with_full_refit(session, settings, campaign, items)
    assert len({c.computed_at for c in auto_rows().values()}) == 1


def test_agreement_rows_per_scope_and_rater_flags(session: Session, settings: Settings) -> None:
    campaign, items = _campaign(session, 120)
    _deliver(session, campaign, items[:60], seed=1, fast={"sim-rater-0010"})
    _deliver(session, campaign, items[60:], seed=2, fast={"sim-rater-0010"})
    rec.reconcile_campaign(session, settings, campaign.id)
    reports = session.exec(select(AgreementReport).where(AgreementReport.campaign_id == campaign.id)).all()
    by = {(r.scope, r.metric) for r in reports}
    for scope in ("campaign", "vendor", "batch"):
        for metric in ("krippendorff_alpha", "fleiss_kappa", "percent_agreement"):
            assert (scope, metric) in by
    assert sum(1 for r in reports if r.scope == "batch" and r.metric == "fleiss_kappa") == 2
    camp = next(r for r in reports if r.scope == "campaign" and r.metric == "krippendorff_alpha")
    assert camp.ci_low is not None and camp.ci_low <= camp.value <= camp.ci_high
    flags = {r.scope_key: r.details for r in reports if r.metric == "flags"}
    assert "too_fast" in flags["sim-rater-0010"]["flags"]


def test_contested_items_go_back_for_more_judgments(session: Session, settings: Settings) -> None:
    campaign, items = _campaign(session, 40, extra_rounds=1)
    _deliver(session, campaign, items, seed=5, raters=2)  # two raters: many items split 1-1
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.contested > 0 and result.extra_batches >= 1
    extra = session.exec(select(Batch).where(Batch.campaign_id == campaign.id).where(Batch.round == 1)).all()
    assert sum(b.n_items for b in extra) == result.contested


def _two_vendor_batch(session: Session, campaign: Campaign, items: list[Item], accuracy: dict[str, float],
                      seed: int) -> None:
    """One completed batch per vendor, 3 raters each per item, each vendor right with its own accuracy."""
    rng = random.Random(seed)
    now = utcnow()
    for vendor, acc in accuracy.items():
        batch = Batch(campaign_id=campaign.id, vendor=vendor, raters_per_item=3, n_items=len(items),
                      idempotency_key=uuid.uuid4().hex, status=BatchStatus.completed)
        session.add(batch)
        session.flush()
        session.add_all([BatchItem(batch_id=batch.id, item_id=i.id) for i in items])
        for item in items:
            truth = "A" if int(item.external_id[1:]) % 2 == 0 else "B"
            for r in range(3):
                label = truth if rng.random() < acc else ("B" if truth == "A" else "A")
                session.add(Judgment(campaign_id=campaign.id, item_id=item.id, batch_id=batch.id, vendor=vendor,
                                     vendor_judgment_id=uuid.uuid4().hex, rater_id=f"{vendor}-r{r}", label=label,
                                     started_at=now - timedelta(seconds=30), submitted_at=now))
    session.commit()


@pytest.mark.parametrize(("accuracy", "best"), [({"simulated": 0.95, "file": 0.6}, "simulated"),
                                                ({"simulated": 0.6, "file": 0.95}, "file")])
def test_extra_judgments_go_to_the_vendor_of_best_measured_quality(session: Session, tmp_path: Path,
                                                                  accuracy: dict[str, float], best: str) -> None:
    settings = Settings(data_dir=tmp_path, contested_threshold=0.999)  # some items stay contested
    campaign, items = _campaign(session, 60, extra_rounds=1)
    campaign.extra_vendors = ["file"]
    session.add(campaign)
    _two_vendor_batch(session, campaign, items, accuracy, seed=3)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.extra_batches >= 1 and result.extra_vendor == best
    extra = session.exec(select(Batch).where(Batch.campaign_id == campaign.id).where(Batch.round == 1)).all()
    assert {b.vendor for b in extra} == {best}
    quality = {r.scope_key: r.value for r in session.exec(select(AgreementReport).where(
        AgreementReport.metric == "accuracy_vs_consensus").where(AgreementReport.scope == "vendor"))}
    assert quality[best] > quality[({"simulated", "file"} - {best}).pop()]


def test_a_vendor_new_to_the_campaign_is_scored_on_its_record_elsewhere(session: Session, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, contested_threshold=0.999)
    other, other_items = _campaign(session, 60)
    _two_vendor_batch(session, other, other_items, {"simulated": 0.6, "file": 0.97}, seed=4)
    rec.reconcile_campaign(session, settings, other.id)
    campaign, items = _campaign(session, 40, extra_rounds=1)
    campaign.extra_vendors = ["file", "model"]  # file: measured elsewhere; model: measured nowhere (0.5)
    session.add(campaign)
    _deliver(session, campaign, items, seed=5, raters=2)
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.extra_batches >= 1 and result.extra_vendor == "file"


def test_the_extra_round_stays_within_the_budget_at_the_chosen_vendors_price(session: Session, tmp_path: Path) -> None:
    from service.settings import VendorSettings

    settings = Settings(data_dir=tmp_path, contested_threshold=0.999, file=VendorSettings(reward_per_judgment=0.5))
    campaign, items = _campaign(session, 60, extra_rounds=1)
    campaign.extra_vendors, campaign.budget_usd = ["file"], 1_000.0
    session.add(campaign)
    _two_vendor_batch(session, campaign, items, {"simulated": 0.6, "file": 0.95}, seed=3)
    spent = sum(b.expected_cost for b in session.exec(select(Batch).where(Batch.campaign_id == campaign.id)))
    campaign.budget_usd = spent + 3 * 2 * 0.5  # room for exactly 3 items x 2 judgments at file's price
    session.add(campaign)
    session.commit()
    result = rec.reconcile_campaign(session, settings, campaign.id)
    assert result.extra_vendor == "file" and result.contested > 3
    extra = session.exec(select(Batch).where(Batch.campaign_id == campaign.id).where(Batch.round == 1)).all()
    assert sum(b.n_items for b in extra) == 3


def test_reconciliations_are_paced_while_batches_are_open_and_the_last_one_always_runs(
        session: Session, settings: Settings) -> None:
    campaign, items = _campaign(session, 40)
    assert rec.reconcile_due(session, settings, campaign.id)  # never reconciled
    _deliver(session, campaign, items[:20], seed=1)
    pending = Batch(campaign_id=campaign.id, vendor="simulated", raters_per_item=5, n_items=20,
                    idempotency_key=uuid.uuid4().hex, status=BatchStatus.submitted)
    session.add(pending)
    session.commit()
    rec.reconcile_campaign(session, settings, campaign.id)
    assert not rec.reconcile_due(session, settings, campaign.id)  # moments ago, a batch still open
    state = session.exec(select(AgreementReport).where(AgreementReport.scope == "state")).one()
    state.computed_at = utcnow() - timedelta(seconds=settings.reconcile_min_interval_s + 1)
    session.add(state)
    session.commit()
    assert rec.reconcile_due(session, settings, campaign.id)
    state.computed_at, pending.status = utcnow(), BatchStatus.completed
    session.add_all([state, pending])
    session.commit()
    assert rec.reconcile_due(session, settings, campaign.id)  # no open batch: the last one always runs
