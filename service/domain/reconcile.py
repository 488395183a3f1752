"""Reconcile a campaign: consensus per item, agreement per campaign/vendor/batch/rater,
extra judgments for contested items (adaptive overlap), then the retraining policy.

The numerics live in ``service.aggregation``; this module loads rows, builds the frame,
calls the aggregator and stores the result with the method's name and parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, col, select

from service.aggregation import fit_method, krippendorff_alpha
from service.domain.campaigns import committed_cost, get_campaign, lock_campaign, plan_batches
from service.domain.retrain import maybe_enqueue_retrain
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

__all__ = ["CONSENSUS_METHODS", "PRIMARY_METHOD", "ReconcileResult", "judgments_frame", "reconcile_campaign"]

PRIMARY_METHOD = "ds"
CONSENSUS_METHODS = ("mv", "ds")
OPEN = (BatchStatus.pending, BatchStatus.submitting, BatchStatus.submitted)


@dataclass(frozen=True)
class ReconcileResult:
    items: int
    judgments: int
    contested: int
    alpha: float | None
    extra_batches: int
    campaign_status: str


def judgments_frame(session: Session, campaign_id: uuid.UUID) -> pd.DataFrame:
    rows = session.exec(select(Judgment.item_id, Judgment.rater_id, Judgment.label, Judgment.vendor,
                               Judgment.batch_id).where(Judgment.campaign_id == campaign_id)).all()
    frame = pd.DataFrame(rows, columns=["task", "worker", "label", "vendor", "batch"])
    frame["task"] = frame["task"].astype(str)
    frame["batch"] = frame["batch"].astype(str)
    return frame


def _alpha(frame: pd.DataFrame) -> float | None:
    if frame["worker"].nunique() < 2 or frame["task"].nunique() < 1:
        return None
    try:
        value = krippendorff_alpha(frame[["task", "worker", "label"]], level="nominal")
    except ValueError:
        return None
    return None if pd.isna(value) else float(value)


def _agreement_rows(campaign: Campaign, frame: pd.DataFrame, labels: pd.Series,
                    auditable_batches: set[str]) -> list[AgreementReport]:
    audited = frame[frame["batch"].isin(auditable_batches)]
    rows = [AgreementReport(campaign_id=campaign.id, scope="campaign", scope_key=str(campaign.id),
                            metric="krippendorff_alpha", value=_alpha(audited), n=len(audited),
                            details={"level": "nominal", "raters": int(audited["worker"].nunique())})]
    for scope, column in (("vendor", "vendor"), ("batch", "batch")):
        for key, part in audited.groupby(column):
            rows.append(AgreementReport(campaign_id=campaign.id, scope=scope, scope_key=str(key),
                                        metric="krippendorff_alpha", value=_alpha(part), n=len(part)))
    agrees = audited["label"].to_numpy() == audited["task"].map(labels).to_numpy()
    per_rater = audited.assign(agree=agrees).groupby("worker")["agree"].agg(["mean", "size"])
    rows += [AgreementReport(campaign_id=campaign.id, scope="rater", scope_key=str(worker),
                             metric="accuracy_vs_consensus", value=float(r["mean"]), n=int(r["size"]))
             for worker, r in per_rater.iterrows()]
    return rows


def _request_extra_judgments(session: Session, settings: Settings, campaign: Campaign,
                             contested: list[uuid.UUID]) -> int:
    """Contested items not already out again, within rounds and budget, go back for 2 more judgments."""
    if not contested or campaign.status is not CampaignStatus.running:
        return 0
    rounds = dict(session.exec(select(BatchItem.item_id, Batch.round).join(Batch)
                               .where(Batch.campaign_id == campaign.id)
                               .where(col(BatchItem.item_id).in_(contested))).all())
    open_items = set(session.exec(select(BatchItem.item_id).join(Batch).where(Batch.campaign_id == campaign.id)
                                  .where(col(Batch.status).in_(OPEN))))
    next_round = max(rounds.values(), default=0) + 1
    eligible = [i for i in contested if i not in open_items and rounds.get(i, 0) < campaign.max_extra_rounds]
    extra_raters = 2
    reward = settings.vendor(campaign.vendor).reward_per_judgment
    if campaign.budget_usd > 0 and reward > 0:
        affordable = int((campaign.budget_usd - committed_cost(session, campaign)) // (extra_raters * reward))
        eligible = eligible[:max(0, affordable)]
    if not eligible:
        return 0
    return len(plan_batches(session, settings, campaign, eligible, raters_per_item=extra_raters,
                            round_no=next_round))


def reconcile_campaign(session: Session, settings: Settings, campaign_ref: uuid.UUID | str) -> ReconcileResult:
    campaign = get_campaign(session, campaign_ref)
    lock_campaign(session, campaign)  # one reconcile per campaign at a time, or extra rounds double up
    frame = judgments_frame(session, campaign.id)
    if frame.empty:
        return ReconcileResult(0, 0, 0, None, 0, campaign.status.value)
    gold = pd.Series({str(i): g for i, g in session.exec(
        select(Item.id, Item.gold).where(Item.campaign_id == campaign.id).where(col(Item.gold).is_not(None)))},
        dtype=object)
    counts = frame.groupby("task").size()
    now = utcnow()
    session.exec(delete(ConsensusLabel).where(col(ConsensusLabel.campaign_id) == campaign.id))  # type: ignore[call-overload]
    primary = None
    contested: list[uuid.UUID] = []
    for method in CONSENSUS_METHODS:
        result = fit_method(method, frame[["task", "worker", "label"]], gold=gold if len(gold) else None)
        confidence = result.probas.max(axis=1)
        posts = result.probas.to_dict(orient="index")
        rows = []
        for task, label in result.labels.items():
            conf = float(confidence[task])
            is_contested = conf < settings.contested_threshold
            rows.append(ConsensusLabel(campaign_id=campaign.id, item_id=uuid.UUID(task), method=method,
                                       label=str(label), confidence=conf,
                                       posterior={str(k): float(v) for k, v in posts[task].items()},
                                       n_judgments=int(counts[task]), contested=is_contested, computed_at=now))
            if method == PRIMARY_METHOD and is_contested:
                contested.append(uuid.UUID(task))
        session.add_all(rows)
        if method == PRIMARY_METHOD:
            primary = result
    assert primary is not None
    auditable = {str(b) for b in session.exec(select(Batch.id).where(Batch.campaign_id == campaign.id)
                                              .where(Batch.auditable == True))}  # noqa: E712
    session.exec(delete(AgreementReport).where(col(AgreementReport.campaign_id) == campaign.id))  # type: ignore[call-overload]
    reports = _agreement_rows(campaign, frame, primary.labels, auditable)
    session.add_all(reports)
    extra = _request_extra_judgments(session, settings, campaign, contested)
    still_open = session.exec(select(Batch.id).where(Batch.campaign_id == campaign.id)
                              .where(col(Batch.status).in_(OPEN))).first()
    if still_open is None and campaign.status is CampaignStatus.running:
        campaign.status = CampaignStatus.completed
        session.add(campaign)
    session.flush()
    maybe_enqueue_retrain(session, settings, campaign, trigger="policy")
    session.commit()
    return ReconcileResult(items=len(primary.labels), judgments=len(frame), contested=len(contested),
                           alpha=reports[0].value, extra_batches=extra, campaign_status=campaign.status.value)

