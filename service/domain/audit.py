"""Rater-agreement audit of a campaign, and model provenance cards.

:func:`build_audit` gathers what an auditor attaches to a model release: Krippendorff's α
with a bootstrap interval for the campaign and per vendor, each rater's agreement with the
consensus with a Wilson interval, flagged raters and why, the contested items with every
answer they got, and the consensus method with its confidence. Rendering (HTML with SVG
charts) is the entry points' job: ``service.api.reports.render_audit_html``.

Flags (a rater is flagged for each rule it breaks, with at least ``MIN_JUDGMENTS``):

- ``low_agreement``: the upper end of the 95% interval of agreement with consensus is below
  ``LOW_AGREEMENT`` — consistently disagreeing, not just unlucky;
- ``position_bias``: answers the first option (pairwise ``A``) in more than ``POSITION_BIAS``
  of its judgments;
- ``low_gold_accuracy``: below ``LOW_GOLD`` on at least 3 gold items.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.aggregation import AggregationInputError, krippendorff_alpha_ci
from service.domain.analytics import PRIMARY_METHOD, confidence_histogram, judgment_frame
from service.domain.campaigns import get_campaign
from service.errors import NotFound
from service.storage.models import (
    Campaign,
    ConsensusLabel,
    DatasetSnapshot,
    Item,
    Judgment,
    ModelVersion,
    RetrainJob,
    SnapshotJudgment,
)
from service.storage.types import utcnow

__all__ = ["AuditReport", "RaterAudit", "build_audit", "model_history", "provenance_card", "wilson_interval"]

MIN_JUDGMENTS = 5
LOW_AGREEMENT = 0.6
POSITION_BIAS = 0.8
LOW_GOLD = 0.6


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """95% Wilson score interval of a proportion (sound for small n and proportions near 0 or 1)."""
    if n == 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class RaterAudit:
    rater: str  # pseudonymised unless the caller asked for plain ids
    vendor: str
    judgments: int
    agreement: float | None
    ci_low: float | None
    ci_high: float | None
    gold_accuracy: float | None
    gold_judgments: int
    first_option_share: float
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AlphaRow:
    scope: str
    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    judgments: int
    raters: int


@dataclass(frozen=True)
class ContestedItem:
    item: str
    prompt: str
    label: str
    confidence: float
    answers: dict[str, int]
    raters: list[tuple[str, str]]  # (rater, label)


@dataclass(frozen=True)
class AuditReport:
    campaign: Campaign
    generated_at: datetime
    method: str
    threshold: float
    items: int
    judgments: int
    mean_confidence: float | None
    method_agreement: float | None  # share of items where MV and DS agree
    alpha: list[AlphaRow]
    raters: list[RaterAudit]
    contested: list[ContestedItem]
    histogram: pd.DataFrame
    models: list[dict[str, Any]]

    @property
    def flagged(self) -> list[RaterAudit]:
        return [r for r in self.raters if r.flags]


def _alpha_row(scope: str, part: pd.DataFrame, n_boot: int) -> AlphaRow:
    frame = part[["item_id", "rater_id", "label"]].astype(str).set_axis(["task", "worker", "label"], axis=1)
    try:
        alpha, low, high = krippendorff_alpha_ci(frame, level="nominal", n_boot=n_boot)
    except (AggregationInputError, ValueError):
        alpha = low = high = None
    clean = [None if v is None or math.isnan(v) else float(v) for v in (alpha, low, high)]
    return AlphaRow(scope, clean[0], clean[1], clean[2], len(part), int(part["rater_id"].nunique()))


def _rater_rows(frame: pd.DataFrame, first_option: str, name: Callable[[str], str]) -> list[RaterAudit]:
    rows = []
    for (rater, vendor), part in frame.groupby(["rater_id", "vendor"]):
        judged = part[part["consensus"].notna()]
        agree = int((judged["label"] == judged["consensus"]).sum())
        low, high = wilson_interval(agree, len(judged))
        gold = part[part["gold"].notna()]
        gold_acc = float((gold["label"] == gold["gold"]).mean()) if len(gold) else None
        first = float((part["label"] == first_option).mean())
        flags = []
        if len(part) >= MIN_JUDGMENTS:
            if high is not None and high < LOW_AGREEMENT:
                flags.append(f"low_agreement: agrees with consensus on {agree}/{len(judged)} "
                             f"(95% CI up to {high:.2f} < {LOW_AGREEMENT})")
            if first > POSITION_BIAS:
                flags.append(f"position_bias: answers {first_option!r} in {first:.0%} of {len(part)} judgments")
            if gold_acc is not None and len(gold) >= 3 and gold_acc < LOW_GOLD:
                flags.append(f"low_gold_accuracy: {gold_acc:.0%} on {len(gold)} gold items")
        rows.append(RaterAudit(rater=name(str(rater)), vendor=str(vendor), judgments=len(part),
                               agreement=agree / len(judged) if len(judged) else None, ci_low=low, ci_high=high,
                               gold_accuracy=gold_acc, gold_judgments=len(gold), first_option_share=first,
                               flags=flags))
    return sorted(rows, key=lambda r: (r.agreement if r.agreement is not None else 2.0, r.rater))


def build_audit(session: Session, campaign_ref: str | uuid.UUID, *, pseudonymize: Callable[[str], str] = str,
                threshold: float = 0.7, n_boot: int = 300, max_contested: int = 200) -> AuditReport:
    campaign = get_campaign(session, campaign_ref)
    frame = judgment_frame(session, campaign_id=campaign.id)
    labels = session.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign.id)).all()
    primary = {c.item_id: c for c in labels if c.method == PRIMARY_METHOD}
    mv = {c.item_id: c.label for c in labels if c.method == "mv"}
    both = [i for i in primary if i in mv]
    alpha = [_alpha_row("campaign", frame, n_boot)] if len(frame) else []
    alpha += [_alpha_row(f"vendor {v}", part, n_boot) for v, part in frame.groupby("vendor")] if len(frame) else []
    first_option = "A" if campaign.kind.value == "pairwise" else ""
    contested_labels = sorted((c for c in primary.values() if c.contested), key=lambda c: c.confidence)
    contested_labels = contested_labels[:max_contested]
    items = {i.id: i for i in session.exec(select(Item).where(
        col(Item.id).in_([c.item_id for c in contested_labels])))} if contested_labels else {}
    contested = []
    for c in contested_labels:
        part = frame[frame["item_id"] == c.item_id]
        item = items[c.item_id]
        contested.append(ContestedItem(
            item=item.external_id, prompt=item.prompt[:300], label=c.label, confidence=c.confidence,
            answers={str(k): int(v) for k, v in part["label"].value_counts().items()},
            raters=[(pseudonymize(str(r)), str(lab)) for r, lab in zip(part["rater_id"], part["label"], strict=True)]))
    confidences = [c.confidence for c in primary.values()]
    return AuditReport(
        campaign=campaign, generated_at=utcnow(), method=PRIMARY_METHOD, threshold=threshold,
        items=len(primary), judgments=len(frame),
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        method_agreement=sum(primary[i].label == mv[i] for i in both) / len(both) if both else None,
        alpha=alpha, raters=_rater_rows(frame, first_option, pseudonymize) if len(frame) else [],
        contested=contested, histogram=confidence_histogram(session, campaign.id),
        models=[provenance_card(session, m.id) for m in session.exec(
            select(ModelVersion).where(ModelVersion.campaign_id == campaign.id)
            .order_by(col(ModelVersion.version)))])


def model_history(session: Session, *, family: str | None = None) -> list[ModelVersion]:
    """Model versions, oldest first (for held-out accuracy over time)."""
    query = select(ModelVersion).order_by(col(ModelVersion.created_at))
    if family is not None:
        query = query.where(ModelVersion.family == family)
    return list(session.exec(query))


def provenance_card(session: Session, model_ref: str | uuid.UUID) -> dict[str, Any]:
    """What a model version was trained on and how well it did: the data's lineage down to judgments."""
    try:
        model = session.get(ModelVersion, uuid.UUID(str(model_ref)))
    except ValueError:
        model = None
    if model is None:
        raise NotFound("model version", model_ref)
    snapshot = session.get(DatasetSnapshot, model.snapshot_id)
    campaign = session.get(Campaign, model.campaign_id)
    job = session.get(RetrainJob, model.retrain_job_id)
    parent = session.get(ModelVersion, model.parent_id) if model.parent_id else None
    linked = (select(Judgment.vendor, func.count(), func.count(func.distinct(Judgment.rater_id)))
              .join(SnapshotJudgment, col(SnapshotJudgment.judgment_id) == Judgment.id)
              .where(SnapshotJudgment.snapshot_id == model.snapshot_id).group_by(Judgment.vendor))
    vendors = {v: {"judgments": int(n), "raters": int(r)} for v, n, r in session.exec(linked).all()}
    return {
        "id": str(model.id), "family": model.family, "version": model.version, "promoted": model.promoted,
        "created_at": model.created_at, "parent_version": parent.version if parent else None,
        "campaign": {"id": str(model.campaign_id), "name": campaign.name if campaign else None},
        "retrain_job": {"id": str(model.retrain_job_id), "trigger": job.trigger if job else None},
        "dataset": {"snapshot_id": str(model.snapshot_id), "hash": model.dataset_hash,
                    "pairs": snapshot.n_pairs if snapshot else None,
                    "judgments": sum(v["judgments"] for v in vendors.values()), "vendors": vendors,
                    "consensus_method": PRIMARY_METHOD},
        "metrics": dict(model.metrics),
        "config": {k: model.config.get(k) for k in ("mode", "backbone", "learning_rate", "num_epochs", "max_length",
                                                      "seed") if k in model.config},
        "artifact_path": model.artifact_path,
    }
