"""Retraining: the policy that enqueues it, the snapshot it trains on, the version it registers.

Policy: retrain a model family when at least ``retrain_min_new_pairs`` reconciled
preferences exist that no snapshot of that family has used yet, or when a finished
campaign leaves any such pairs; at most one job queued or running per family (debounce).
The job runs on the ``training`` queue so GPU machines can consume only that.

Lineage: every judgment behind a pair is linked to the snapshot (``snapshot_judgment``),
and the snapshot to the model version trained on it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.domain import outbox, training_lease
from service.domain.campaigns import PRIMARY_CONSENSUS
from service.domain.provenance import write_card
from service.domain.registry import serving_version
from service.errors import NotFound
from service.settings import Settings
from service.storage.models import (
    Batch,
    BatchItem,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    DatasetSnapshot,
    Item,
    Judgment,
    JudgmentKind,
    ModelVersion,
    RetrainJob,
    RetrainStatus,
    SnapshotJudgment,
)
from service.storage.bulk import bulk_insert
from service.storage.types import utcnow

__all__ = ["RetrainOutcome", "build_pairs", "maybe_enqueue_retrain", "run_retrain_job", "scheduled_retrains",
           "unused_pairs"]

ACTIVE = (RetrainStatus.queued, RetrainStatus.running)
OPEN = (BatchStatus.pending, BatchStatus.submitting, BatchStatus.submitted)


def _final_consensus(session: Session, campaign: Campaign) -> list[tuple[ConsensusLabel, Item]]:
    """Pairwise consensus labels whose items have no open batch (no more judgments coming)."""
    open_items = select(BatchItem.item_id).join(Batch).where(Batch.campaign_id == campaign.id) \
        .where(col(Batch.status).in_(OPEN))
    query = (select(ConsensusLabel, Item).join(Item, col(Item.id) == ConsensusLabel.item_id)
             .where(ConsensusLabel.campaign_id == campaign.id).where(ConsensusLabel.method == PRIMARY_CONSENSUS)
             .where(col(ConsensusLabel.label).in_(["A", "B"])).where(col(Item.id).not_in(open_items))
             .order_by(col(Item.id)))
    return list(session.exec(query).all())


def _used_items(session: Session, family: str) -> set[uuid.UUID]:
    query = (select(Judgment.item_id).join(SnapshotJudgment, col(SnapshotJudgment.judgment_id) == Judgment.id)
             .join(ModelVersion, col(ModelVersion.snapshot_id) == SnapshotJudgment.snapshot_id)
             .where(ModelVersion.family == family).distinct())
    return set(session.exec(query))


def build_pairs(session: Session, campaign: Campaign) -> pd.DataFrame:
    """(prompt, chosen, rejected, weight, item_id, judgment_ids): the consensus posterior is the soft label."""
    rows = []
    final = _final_consensus(session, campaign)
    judgments: dict[uuid.UUID, list[str]] = {}
    for item_id, judgment_id in session.exec(select(Judgment.item_id, Judgment.id)
                                             .where(Judgment.campaign_id == campaign.id)):
        judgments.setdefault(item_id, []).append(str(judgment_id))
    for label, item in final:
        win = 0 if label.label == "A" else 1
        p_win = float(label.posterior.get(label.label, label.confidence))
        p_other = float(label.posterior.get("B" if win == 0 else "A", 1.0 - p_win))
        rows.append({"prompt": item.prompt, "chosen": item.responses[win]["text"],
                     "rejected": item.responses[1 - win]["text"],
                     "weight": p_win / (p_win + p_other) if p_win + p_other > 0 else 1.0,
                     "item_id": str(item.id), "judgment_ids": sorted(judgments.get(item.id, []))})
    return pd.DataFrame(rows, columns=["prompt", "chosen", "rejected", "weight", "item_id", "judgment_ids"])


def maybe_enqueue_retrain(session: Session, settings: Settings, campaign: Campaign, *,
                          trigger: str = "policy", force: bool = False) -> RetrainJob | None:
    """Apply the policy; returns the queued job, or None when there is nothing (new) to train on."""
    if campaign.kind is not JudgmentKind.pairwise or not (settings.retrain_enabled or force):
        return None
    active = session.exec(select(RetrainJob).where(RetrainJob.model_family == campaign.model_family)
                          .where(col(RetrainJob.status).in_(ACTIVE))).first()
    if active is not None:
        return None  # debounced: the running job's completion re-applies the policy
    new = unused_pairs(session, campaign)
    finished = campaign.status is CampaignStatus.completed
    if not force and not (new >= settings.retrain_min_new_pairs or (finished and new > 0)):
        return None
    if new == 0 and not force:
        return None
    job = RetrainJob(campaign_id=campaign.id, model_family=campaign.model_family, trigger=trigger)
    session.add(job)
    session.flush()
    outbox.enqueue(session, outbox.TRAIN, job.id)
    return job


def scheduled_retrains(session: Session, settings: Settings) -> int:
    """The schedule policy: families whose newest version is older than ``retrain_schedule_s``
    (or that have none) retrain on whatever new reconciled pairs exist."""
    if settings.retrain_schedule_s is None:
        return 0
    cutoff = utcnow().timestamp() - settings.retrain_schedule_s
    newest = dict(session.exec(select(ModelVersion.family, func.max(ModelVersion.created_at))
                               .group_by(ModelVersion.family)).all())
    queued = 0
    for campaign in session.exec(select(Campaign).where(Campaign.kind == JudgmentKind.pairwise)):
        last = newest.get(campaign.model_family)
        if last is None or last.timestamp() < cutoff:
            unused = unused_pairs(session, campaign)
            if unused and maybe_enqueue_retrain(session, settings, campaign, trigger="schedule", force=True):
                queued += 1
    session.commit()
    return queued


def unused_pairs(session: Session, campaign: Campaign) -> int:
    """Reconciled, final preferences that no model version of the campaign's family has trained on."""
    open_items = select(BatchItem.item_id).join(Batch).where(Batch.campaign_id == campaign.id) \
        .where(col(Batch.status).in_(OPEN))
    final = set(session.exec(select(ConsensusLabel.item_id).where(ConsensusLabel.campaign_id == campaign.id)
                             .where(ConsensusLabel.method == PRIMARY_CONSENSUS)
                             .where(col(ConsensusLabel.label).in_(["A", "B"]))
                             .where(col(ConsensusLabel.item_id).not_in(open_items))))
    return len(final - _used_items(session, campaign.model_family)) if final else 0


def _split(pairs: pd.DataFrame, eval_share: float = 0.15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stable held-out split by item id hash (the same item is always on the same side)."""
    bucket = pairs["item_id"].map(lambda i: int(hashlib.sha256(i.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    held = bucket < eval_share
    return pairs[~held].reset_index(drop=True), pairs[held].reset_index(drop=True)


def _write_snapshot(session: Session, settings: Settings, campaign: Campaign, pairs: pd.DataFrame) -> DatasetSnapshot:
    from service.reward.dataset import pairs_hash

    digest = pairs_hash(pairs[["prompt", "chosen", "rejected", "weight", "item_id"]])
    directory = settings.artifacts_dir / "snapshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{digest}.parquet"
    if not path.exists():
        pairs.to_parquet(path, index=False)
    snapshot = DatasetSnapshot(campaign_id=campaign.id, content_hash=digest, path=str(path), n_pairs=len(pairs))
    session.add(snapshot)
    session.flush()
    links = {uuid.UUID(j) for ids in pairs["judgment_ids"] for j in ids}
    bulk_insert(session, SnapshotJudgment.__table__,  # type: ignore[attr-defined]
                [{"snapshot_id": snapshot.id, "judgment_id": j} for j in sorted(links)])
    return snapshot


@dataclass(frozen=True)
class RetrainOutcome:
    job_id: uuid.UUID
    status: str
    model_version: int | None
    metrics: dict[str, float]


def run_retrain_job(session: Session, settings: Settings, job_id: uuid.UUID | str) -> RetrainOutcome:
    """Snapshot -> train -> evaluate -> register (promote when better than the promoted parent)."""
    from service.reward import RewardConfig, is_better, train_reward_model

    job = session.get(RetrainJob, uuid.UUID(str(job_id)))
    if job is None:
        raise NotFound("retrain job", job_id)
    if job.status in (RetrainStatus.succeeded, RetrainStatus.failed):
        return RetrainOutcome(job.id, job.status.value, None, {})
    if not training_lease.claim(session, job.id):  # a second delivery while another worker trains it
        return RetrainOutcome(job.id, RetrainStatus.running.value, None, {})
    session.refresh(job)
    campaign = session.get(Campaign, job.campaign_id)
    assert campaign is not None
    pairs = build_pairs(session, campaign)
    try:
        if len(pairs) < 10:
            raise ValueError(f"only {len(pairs)} reconciled pairs; at least 10 are needed to train and evaluate")
        snapshot = _write_snapshot(session, settings, campaign, pairs)
        job.snapshot_id = snapshot.id
        session.commit()
        train, held_out = _split(pairs)
        parent = serving_version(session, job.model_family)
        version = (session.exec(select(func.max(ModelVersion.version))
                                .where(ModelVersion.family == job.model_family)).one() or 0) + 1
        out_dir = settings.artifacts_dir / "models" / job.model_family / f"v{version}"
        config = RewardConfig(mode=settings.reward_mode, backbone=settings.reward_backbone,
                              cache_dir=str(settings.artifacts_dir / "embedding-cache"))
        with training_lease.heartbeat(session, job.id):
            result = train_reward_model(config, train, held_out, out_dir=Path(out_dir))
    except Exception as exc:  # the job records why; the worker does not crash
        session.rollback()
        job = session.get(RetrainJob, job.id)
        assert job is not None
        job.status, job.finished_at, job.error = RetrainStatus.failed, utcnow(), f"{type(exc).__name__}: {exc}"
        session.add(job)
        session.commit()
        return RetrainOutcome(job.id, job.status.value, None, {})
    metrics = {k: float(v) for k, v in result.metrics.items()}
    metrics.update(_comparisons(session, campaign, parent, held_out, Path(result.artifact_dir)))
    candidate = {"heldout_accuracy": metrics["heldout_accuracy"], "calibration_error": metrics["calibration_error"]}
    incumbent = None if parent is None else {"heldout_accuracy": metrics["parent_heldout_accuracy"],
                                             "calibration_error": metrics["parent_calibration_error"]}
    better = is_better(candidate, incumbent, min_accuracy_gain=settings.promote_min_gain) \
        or not settings.promote_only_if_better
    if better and parent is not None:
        parent.promoted = False  # one serving version per family
        session.add(parent)
    model = ModelVersion(family=job.model_family, version=version, campaign_id=campaign.id, retrain_job_id=job.id,
                         snapshot_id=snapshot.id, parent_id=parent.id if parent else None,
                         dataset_hash=snapshot.content_hash, metrics=metrics, config=result.config,
                         artifact_path=str(result.artifact_dir), promoted=better)
    session.add(model)
    session.flush()
    job.status, job.finished_at, job.model_version_id = RetrainStatus.succeeded, utcnow(), model.id
    session.add(job)
    # commit first: a reconciliation from now on sees no active job and applies the policy itself, and one
    # that committed while this job ran is seen by the policy below (a fresh read: on SQLite the
    # transaction above reads a snapshot taken before training ended)
    session.commit()
    maybe_enqueue_retrain(session, settings, campaign, trigger="policy")
    session.commit()
    write_card(session, model.id)
    return RetrainOutcome(job.id, job.status.value, version, metrics)


def _gold_pairs(session: Session, campaign: Campaign) -> pd.DataFrame:
    rows = [{"prompt": item.prompt, "chosen": item.responses[0 if item.gold == "A" else 1]["text"],
             "rejected": item.responses[1 if item.gold == "A" else 0]["text"]}
            for item in session.exec(select(Item).where(Item.campaign_id == campaign.id)
                                     .where(col(Item.gold).in_(["A", "B"])))]
    return pd.DataFrame(rows, columns=["prompt", "chosen", "rejected"])


def _comparisons(session: Session, campaign: Campaign, parent: ModelVersion | None, held_out: pd.DataFrame,
                 artifact_dir: Path) -> dict[str, float]:
    """The new model's gold accuracy, and the promoted parent's numbers on the very same sets."""
    from service.reward import evaluate_saved_model

    out: dict[str, float] = {}
    gold = _gold_pairs(session, campaign)
    if len(gold):
        out["gold_accuracy"] = float(evaluate_saved_model(artifact_dir, gold)["heldout_accuracy"])
        out["gold_pairs"] = float(len(gold))
    if parent is not None and Path(parent.artifact_path).exists():
        previous = evaluate_saved_model(parent.artifact_path, held_out)
        out["parent_heldout_accuracy"] = float(previous["heldout_accuracy"])
        out["parent_calibration_error"] = float(previous["calibration_error"])
        if len(gold):
            out["parent_gold_accuracy"] = float(evaluate_saved_model(parent.artifact_path, gold)["heldout_accuracy"])
    elif parent is not None:
        out["parent_heldout_accuracy"] = float(parent.metrics.get("heldout_accuracy", 0.0))
        out["parent_calibration_error"] = float(parent.metrics.get("calibration_error", 1.0))
    return out
