"""A real run for the API, analytics and browser tests: the domain use cases in-process against the
simulated vendor over HTTP (no Celery), from campaign to reward-model versions."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlmodel import select

from service.domain import batches as batch_use_cases
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.ingest import sync_batch
from service.domain.reconcile import reconcile_campaign
from service.domain.retrain import maybe_enqueue_retrain, run_retrain_job
from service.settings import Settings, VendorSettings
from service.storage.db import session_scope
from service.storage.models import Batch, BatchStatus, JudgmentKind, RetrainJob, RetrainStatus
from tests.support import API_KEY, pairwise_items

TURNAROUND_S = 0.4
REWARD = 0.07


@dataclass(frozen=True)
class Run:
    settings: Settings
    campaign_id: uuid.UUID
    name: str
    n_items: int
    raters: int


def run_settings(tmp: object, database_url: str, vendor_url: str) -> Settings:
    return Settings(env="test", data_dir=tmp, database_url=database_url, batch_size=20, poll_interval_s=0.2,
                    reward_backbone="tiny-bert", retrain_min_new_pairs=1_000_000,
                    simulated=VendorSettings(base_url=vendor_url, api_key=API_KEY, reward_per_judgment=REWARD))


def drive(settings: Settings, campaign_id: uuid.UUID, timeout: float = 60) -> None:
    """Push, poll, reconcile until every batch (extra rounds included) is completed."""
    url = settings.resolved_database_url
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(url) as s:
            open_batches = [b for b in s.exec(select(Batch).where(Batch.campaign_id == campaign_id))
                            if b.status is not BatchStatus.completed]
        if not open_batches:
            return
        for b in open_batches:
            with session_scope(url) as s:
                if b.status in (BatchStatus.pending, BatchStatus.submitting):
                    batch_use_cases.push_batch(s, settings, b.id)
                elif sync_batch(s, settings, b.id, force=True).outcome == "completed":
                    reconcile_campaign(s, settings, campaign_id)
        time.sleep(0.2)
    raise AssertionError("the campaign did not complete in time")


def train(settings: Settings, campaign_id: uuid.UUID) -> None:
    with session_scope(settings.resolved_database_url) as s:
        from service.storage.models import Campaign

        campaign = s.get(Campaign, campaign_id)
        job = maybe_enqueue_retrain(s, settings, campaign, trigger="manual", force=True)
        s.commit()
        job_id = job.id if job else s.exec(select(RetrainJob.id).where(
            RetrainJob.status == RetrainStatus.queued)).first()
    with session_scope(settings.resolved_database_url) as s:
        outcome = run_retrain_job(s, settings, job_id)
    assert outcome.status == "succeeded", outcome


def produce_run(settings: Settings, *, n_items: int = 60, raters: int = 3, name: str | None = None,
                models: int = 0) -> Run:
    name = name or f"run-{uuid.uuid4().hex[:6]}"
    with session_scope(settings.resolved_database_url) as s:
        campaign = create_campaign(s, CampaignSpec(name=name, kind=JudgmentKind.pairwise, raters_per_item=raters,
                                                   model_family=f"{name}-rm", max_extra_rounds=1,
                                                   budget_usd=n_items * (raters + 2) * REWARD))
        add_items(s, campaign, pairwise_items(n_items, gold_every=5))
        start_campaign(s, settings, campaign)
        s.commit()
        campaign_id = campaign.id
    drive(settings, campaign_id)
    for _ in range(models):
        train(settings, campaign_id)
    return Run(settings=settings, campaign_id=campaign_id, name=name, n_items=n_items, raters=raters)
