"""Shared steps of the end-to-end loop tests: start workers, run a campaign, compare books."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from service.broker import EmbeddedBroker
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.settings import Settings, get_settings
from service.storage.db import migrate, session_scope
from service.storage.models import (
    Batch,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Item,
    Judgment,
    JudgmentKind,
    ModelVersion,
    QuarantinedPayload,
    RetrainJob,
    RetrainStatus,
    SnapshotJudgment,
)
from tests.support import (
    Vendor,
    apply_env,
    fresh_postgres,
    fresh_redis_db,
    pairwise_items,
    postgres_available,
    redis_available,
    running_vendor,
    settings_env,
    wait_for,
)


@dataclass
class Loop:
    settings: Settings
    env: dict[str, str]
    vendor: Vendor
    tmp: Path
    stack: ExitStack

    @property
    def url(self) -> str:
        return self.settings.resolved_database_url


@contextmanager
def loop_backend(backend: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, *vendor_args: str,
                 **settings: Any) -> Iterator[Loop]:
    if backend == "postgres+redis" and not (postgres_available() and redis_available()):
        pytest.skip("needs PostgreSQL and Redis on 127.0.0.1 (.ci/run starts them)")
    with ExitStack() as stack:
        vendor = stack.enter_context(running_vendor(tmp, *vendor_args))
        if backend == "postgres+redis":
            db, broker = stack.enter_context(fresh_postgres()), stack.enter_context(fresh_redis_db())
        else:
            db, broker = f"sqlite:///{tmp / 'crowdbridge.db'}", None
        env = settings_env(data_dir=tmp / "data", database_url=db, broker_url=broker, vendor_url=vendor.url,
                           **settings)
        apply_env(monkeypatch, env)
        resolved = get_settings()
        if broker is None:
            embedded = EmbeddedBroker(resolved.broker_socket)
            embedded.start()
            stack.callback(embedded.stop)
        migrate(db)
        yield Loop(settings=resolved, env=env, vendor=vendor, tmp=tmp, stack=stack)


def start_campaign_of(loop: Loop, n_items: int, raters: int, name: str = "loop") -> Any:
    from workers.relay import relay_outbox

    with session_scope(loop.url) as s:
        campaign = create_campaign(s, CampaignSpec(name=name, kind=JudgmentKind.pairwise, raters_per_item=raters,
                                                   max_extra_rounds=1, model_family=f"{name}-rm"))
        add_items(s, campaign, pairwise_items(n_items, gold_every=10))
        start_campaign(s, loop.settings, campaign)
        s.commit()
        campaign_id = campaign.id
    relay_outbox()
    return campaign_id


def finished(loop: Loop, campaign_id: Any) -> bool:
    with session_scope(loop.url) as s:
        campaign = s.get(Campaign, campaign_id)
        jobs = s.exec(select(RetrainJob.status).where(RetrainJob.campaign_id == campaign_id)).all()
    return (campaign is not None and campaign.status is CampaignStatus.completed and bool(jobs)
            and all(j in (RetrainStatus.succeeded, RetrainStatus.failed) for j in jobs))


def wait_finished(loop: Loop, campaign_id: Any, timeout: float = 180) -> None:
    wait_for(lambda: finished(loop, campaign_id), timeout=timeout, what="campaign completed and model trained")


def assert_books_balance(loop: Loop, campaign_id: Any, n_items: int) -> dict[str, Any]:
    """Our database against the vendor's own ledger: nothing lost, nothing counted twice."""
    ledger = loop.vendor.ledger()
    with session_scope(loop.url) as s:
        ids = s.exec(select(Judgment.vendor_judgment_id).where(Judgment.campaign_id == campaign_id)).all()
        batches = s.exec(select(Batch).where(Batch.campaign_id == campaign_id)).all()
        consensus = s.exec(select(ConsensusLabel.item_id, ConsensusLabel.method)
                           .where(ConsensusLabel.campaign_id == campaign_id)).all()
        items = s.exec(select(func.count()).select_from(Item).where(Item.campaign_id == campaign_id)).one()
        quarantined = s.exec(select(QuarantinedPayload.reason)).all()
        jobs = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).all()
        model = s.exec(select(ModelVersion).where(ModelVersion.campaign_id == campaign_id)).first()
        linked = s.exec(select(func.count()).select_from(SnapshotJudgment)
                        .where(SnapshotJudgment.snapshot_id == (model.snapshot_id if model else None))).one()
    assert len(ids) == len(set(ids)), "a judgment was stored twice"
    assert sorted(ids) == sorted(ledger["produced_ids"]), "stored judgments differ from what the vendor produced"
    assert all(n == 1 for n in ledger["creations_per_external_id"].values()), "a batch was created twice"
    assert len(ledger["creations_per_external_id"]) == len(batches)
    assert all(b.status is BatchStatus.completed for b in batches)
    assert items == n_items
    for method in ("mv", "ds"):
        assert len({i for i, m in consensus if m == method}) == n_items, f"an item has no {method} consensus"
    malformed = ledger["counters"].get("malformed_sent", 0)
    assert len(quarantined) == malformed and all(quarantined), "malformed payloads must be quarantined with reasons"
    assert all(j.status is RetrainStatus.succeeded for j in jobs), [j.error for j in jobs]
    assert model is not None and linked > 0, "the model version must link to the judgments it trained on"
    return ledger
