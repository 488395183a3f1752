"""Vendor analytics: throughput, turnaround, cost, quality, errors and SLA alerts.

Definitions (each number on the dashboard, the API and ``/metrics`` means this):

- **turnaround** of a judgment: the vendor's ``submitted_at`` (when the rater's answer was
  returned) minus our batch's ``submitted_at`` (when the vendor accepted the batch).
  ``delivery_lag`` is the time from the vendor returning it to our storing it (polling).
- **window**: judgments whose ``submitted_at`` falls in ``[since, until)``; hours run from
  the first batch submission (or ``since``) to the last judgment returned (or ``until``).
- **items/hour**, **judgments/hour**: distinct items judged, judgments stored, per window hour.
- **cost**: the vendor-reported cost of each stored judgment, or, where the vendor reports
  none, the batch's expected cost per judgment. **Accepted** judgments are the stored ones;
  records we quarantined are rejected (``accepted_share`` = stored / (stored + quarantined)).
- **quality**: share of the vendor's judgments equal to the primary consensus label
  (``agreement_with_consensus``), share equal to the item's gold label (``gold_accuracy``),
  and nominal Krippendorff's α over the vendor's judgments.
- **errors**: from ``SubmissionAttempt`` rows. ``submit_error_rate`` = failed or retryable
  submit attempts / submit attempts; ``retry_rate`` = batches that needed more than one
  submit attempt / batches submitted; ``poll_errors`` counts failed polls (successful polls
  are not recorded, so no poll error *rate* is claimed). ``errors_by_class`` counts both.

SLA thresholds (``SlaThreshold``) name one of the numeric fields of :class:`VendorAnalytics`;
a breach is an :class:`SlaAlert`, logged at WARNING, shown on the dashboard and exported as
the ``crowdbridge_sla_breach`` gauge.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.aggregation import AggregationInputError, krippendorff_alpha
from service.domain.reconcile import PRIMARY_METHOD  # the consensus the pipeline trains on
from service.errors import InvalidInput
from service.storage.models import Batch, Campaign, ConsensusLabel, Item, Judgment, QuarantinedPayload
from service.storage.models import SubmissionAttempt
from service.storage.models_api import SlaThreshold

__all__ = ["SLA_METRICS", "SlaAlert", "VendorAnalytics", "confidence_histogram", "evaluate_sla",
           "judgment_frame", "list_sla_thresholds", "set_sla_threshold", "spend_series", "throughput_series",
           "vendor_analytics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VendorAnalytics:
    vendor: str
    campaign: str | None
    window_start: datetime | None
    window_end: datetime | None
    hours: float
    items: int
    judgments: int
    items_per_hour: float | None
    judgments_per_hour: float | None
    turnaround_p50_s: float | None
    turnaround_p95_s: float | None
    turnaround_p99_s: float | None
    turnaround_mean_s: float | None
    delivery_lag_p50_s: float | None
    cost_usd: float
    cost_per_item_usd: float | None
    cost_per_accepted_judgment_usd: float | None
    quarantined: int
    accepted_share: float | None
    active_raters: int
    agreement_with_consensus: float | None
    gold_accuracy: float | None
    gold_judgments: int
    krippendorff_alpha: float | None
    batches: int
    submit_attempts: int
    submit_error_rate: float | None
    retry_rate: float | None
    poll_errors: int
    errors_by_class: dict[str, int] = field(default_factory=dict)
    alerts: list[SlaAlert] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SLA_METRICS = tuple(f.name for f in fields(VendorAnalytics)
                    if f.type in ("float | None", "float", "int") and f.name not in ("hours",))


@dataclass(frozen=True)
class SlaAlert:
    vendor: str
    metric: str
    value: float
    limit: float
    direction: str  # max | min

    @property
    def message(self) -> str:
        word = "above" if self.direction == "max" else "below"
        return f"{self.vendor}: {self.metric} = {self.value:.4g} is {word} the SLA limit {self.limit:.4g}"


def _seconds(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds()


def judgment_frame(session: Session, *, campaign_id: uuid.UUID | None = None, vendor: str | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """One row per stored judgment with its batch timing, cost, consensus and gold label."""
    query = (select(Judgment.vendor, Judgment.campaign_id, Judgment.item_id, Judgment.rater_id, Judgment.label,
                    Judgment.submitted_at, Judgment.received_at, Judgment.cost, Judgment.batch_id,
                    Batch.submitted_at, Batch.expected_cost, Batch.judgments_expected, Item.gold)
             .join(Batch, col(Batch.id) == Judgment.batch_id, isouter=True)
             .join(Item, col(Item.id) == Judgment.item_id))
    if campaign_id is not None:
        query = query.where(Judgment.campaign_id == campaign_id)
    if vendor is not None:
        query = query.where(Judgment.vendor == vendor)
    if since is not None:
        query = query.where(Judgment.submitted_at >= since)
    if until is not None:
        query = query.where(Judgment.submitted_at < until)
    columns = ["vendor", "campaign_id", "item_id", "rater_id", "label", "submitted_at", "received_at", "cost",
               "batch_id", "batch_submitted_at", "batch_expected_cost", "batch_expected", "gold"]
    frame = pd.DataFrame(session.exec(query).all(), columns=columns)
    for column in ("submitted_at", "received_at", "batch_submitted_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["turnaround_s"] = _seconds(frame["submitted_at"] - frame["batch_submitted_at"])
    frame["delivery_lag_s"] = _seconds(frame["received_at"] - frame["submitted_at"])
    fallback = frame["batch_expected_cost"] / frame["batch_expected"].where(frame["batch_expected"] > 0)
    frame["cost_usd"] = pd.to_numeric(frame["cost"], errors="coerce").fillna(fallback).fillna(0.0)
    if campaign_id is not None and not frame.empty:
        consensus = dict(session.exec(select(ConsensusLabel.item_id, ConsensusLabel.label)
                                      .where(ConsensusLabel.campaign_id == campaign_id)
                                      .where(ConsensusLabel.method == PRIMARY_METHOD)).all())
    elif not frame.empty:
        consensus = dict(session.exec(select(ConsensusLabel.item_id, ConsensusLabel.label)
                                      .where(col(ConsensusLabel.campaign_id).in_(frame["campaign_id"].unique()))
                                      .where(ConsensusLabel.method == PRIMARY_METHOD)).all())
    else:
        consensus = {}
    frame["consensus"] = frame["item_id"].map(consensus)
    return frame


def _quantile(values: pd.Series, q: float) -> float | None:
    values = values.dropna()
    return float(np.quantile(values, q)) if len(values) else None


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def _alpha(part: pd.DataFrame) -> float | None:
    try:
        value = krippendorff_alpha(part[["item_id", "rater_id", "label"]]
                                   .set_axis(["task", "worker", "label"], axis=1).astype(str), level="nominal")
    except (AggregationInputError, ValueError):
        return None
    return None if value is None or math.isnan(value) else float(value)


def _attempts(session: Session, campaign_id: uuid.UUID | None, since: datetime | None,
              until: datetime | None) -> pd.DataFrame:
    query = (select(Batch.vendor, SubmissionAttempt.batch_id, SubmissionAttempt.action, SubmissionAttempt.outcome,
                    SubmissionAttempt.error_class)
             .join(Batch, col(Batch.id) == SubmissionAttempt.batch_id))
    if campaign_id is not None:
        query = query.where(Batch.campaign_id == campaign_id)
    if since is not None:
        query = query.where(SubmissionAttempt.started_at >= since)
    if until is not None:
        query = query.where(SubmissionAttempt.started_at < until)
    return pd.DataFrame(session.exec(query).all(), columns=["vendor", "batch_id", "action", "outcome", "error_class"])


def _quarantined(session: Session, campaign_id: uuid.UUID | None, since: datetime | None,
                 until: datetime | None) -> dict[str, int]:
    query = select(QuarantinedPayload.vendor, func.count()).group_by(QuarantinedPayload.vendor)
    if campaign_id is not None:
        query = query.join(Batch, col(Batch.id) == QuarantinedPayload.batch_id).where(Batch.campaign_id == campaign_id)
    if since is not None:
        query = query.where(QuarantinedPayload.received_at >= since)
    if until is not None:
        query = query.where(QuarantinedPayload.received_at < until)
    return {vendor: int(n) for vendor, n in session.exec(query).all()}


def _one_vendor(vendor: str, campaign: str | None, part: pd.DataFrame, attempts: pd.DataFrame, quarantined: int,
                since: datetime | None, until: datetime | None) -> VendorAnalytics:
    start = since or (part["batch_submitted_at"].min() if part["batch_submitted_at"].notna().any()
                      else part["submitted_at"].min())
    end = until or part["submitted_at"].max()
    start = None if pd.isna(start) else pd.Timestamp(start).to_pydatetime()
    end = None if pd.isna(end) else pd.Timestamp(end).to_pydatetime()
    hours = max((end - start).total_seconds(), 0.0) / 3600 if start and end else 0.0
    items, judgments = int(part["item_id"].nunique()), len(part)
    cost = float(part["cost_usd"].sum())
    judged = part[part["consensus"].notna()]
    gold = part[part["gold"].notna()]
    submits = attempts[attempts["action"] == "submit"]
    submit_errors = submits["outcome"].isin(["retryable", "failed"]).sum()
    per_batch = submits.groupby("batch_id").size()
    errors = attempts[attempts["error_class"].notna()]
    return VendorAnalytics(
        vendor=vendor, campaign=campaign, window_start=start, window_end=end, hours=hours, items=items,
        judgments=judgments, items_per_hour=_ratio(items, hours), judgments_per_hour=_ratio(judgments, hours),
        turnaround_p50_s=_quantile(part["turnaround_s"], 0.5), turnaround_p95_s=_quantile(part["turnaround_s"], 0.95),
        turnaround_p99_s=_quantile(part["turnaround_s"], 0.99),
        turnaround_mean_s=float(part["turnaround_s"].mean()) if part["turnaround_s"].notna().any() else None,
        delivery_lag_p50_s=_quantile(part["delivery_lag_s"], 0.5), cost_usd=cost,
        cost_per_item_usd=_ratio(cost, items), cost_per_accepted_judgment_usd=_ratio(cost, judgments),
        quarantined=quarantined, accepted_share=_ratio(judgments, judgments + quarantined),
        active_raters=int(part["rater_id"].nunique()),
        agreement_with_consensus=float((judged["label"] == judged["consensus"]).mean()) if len(judged) else None,
        gold_accuracy=float((gold["label"] == gold["gold"]).mean()) if len(gold) else None,
        gold_judgments=len(gold), krippendorff_alpha=_alpha(part) if judgments else None,
        batches=int(part["batch_id"].nunique()), submit_attempts=len(submits),
        submit_error_rate=_ratio(submit_errors, len(submits)),
        retry_rate=_ratio(int((per_batch > 1).sum()), len(per_batch)),
        poll_errors=int((attempts["action"] == "poll").sum()),
        errors_by_class={str(k): int(v) for k, v in errors["error_class"].value_counts().items()})


def vendor_analytics(session: Session, *, campaign: Campaign | None = None, vendor: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     with_alerts: bool = True) -> list[VendorAnalytics]:
    """One row per vendor (side by side when a campaign went to several), within the window."""
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must be before until")
    campaign_id = campaign.id if campaign is not None else None
    frame = judgment_frame(session, campaign_id=campaign_id, vendor=vendor, since=since, until=until)
    attempts = _attempts(session, campaign_id, since, until)
    quarantined = _quarantined(session, campaign_id, since, until)
    named = {vendor} if vendor else ({campaign.vendor} if campaign is not None else set())
    vendors = sorted(set(frame["vendor"]) | named)  # a campaign's vendor shows (with zeros) in an empty window
    rows = [_one_vendor(v, campaign.name if campaign else None, frame[frame["vendor"] == v],
                        attempts[attempts["vendor"] == v], quarantined.get(v, 0), since, until) for v in vendors]
    if with_alerts:
        alerts = evaluate_sla(session, rows)
        rows = [replace(r, alerts=[a for a in alerts if a.vendor == r.vendor]) for r in rows]
    return rows


def throughput_series(session: Session, *, campaign_id: uuid.UUID | None = None, buckets: int = 24,
                      since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Per vendor and time bucket: judgments, items, turnaround p50/p95 (``bucket_start`` is UTC)."""
    columns = ["vendor", "bucket_start", "judgments", "items", "turnaround_p50_s", "turnaround_p95_s"]
    frame = judgment_frame(session, campaign_id=campaign_id, since=since, until=until)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    start, end = frame["submitted_at"].min(), frame["submitted_at"].max()
    width = max((end - start) / max(buckets, 1), pd.Timedelta(seconds=1))
    frame["bucket_start"] = start + ((frame["submitted_at"] - start) // width) * width
    grouped = frame.groupby(["vendor", "bucket_start"])
    out = grouped.agg(judgments=("item_id", "size"), items=("item_id", "nunique"),
                      turnaround_p50_s=("turnaround_s", lambda s: s.quantile(0.5)),
                      turnaround_p95_s=("turnaround_s", lambda s: s.quantile(0.95))).reset_index()
    return out[columns]


def spend_series(session: Session, campaign: Campaign) -> pd.DataFrame:
    """Cumulative spend over time (budget burn): ``at, spent_usd``."""
    frame = judgment_frame(session, campaign_id=campaign.id).sort_values("submitted_at")
    return pd.DataFrame({"at": frame["submitted_at"], "spent_usd": frame["cost_usd"].cumsum()})


def confidence_histogram(session: Session, campaign_id: uuid.UUID, *, bins: int = 10,
                         method: str = PRIMARY_METHOD) -> pd.DataFrame:
    """Counts of consensus confidence in ``bins`` equal bins over [0, 1]: ``low, high, items``."""
    values = np.array(session.exec(select(ConsensusLabel.confidence).where(ConsensusLabel.campaign_id == campaign_id)
                                   .where(ConsensusLabel.method == method)).all(), dtype=float)
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "items": counts})


def set_sla_threshold(session: Session, *, vendor: str, metric: str, limit: float,
                      direction: str = "max") -> SlaThreshold:
    if metric not in SLA_METRICS:
        raise InvalidInput(f"unknown SLA metric {metric!r}; one of {', '.join(SLA_METRICS)}")
    if direction not in ("max", "min"):
        raise InvalidInput("direction must be 'max' (alert above the limit) or 'min' (alert below)")
    if not math.isfinite(limit):
        raise InvalidInput("the limit must be a finite number")
    row = session.exec(select(SlaThreshold).where(SlaThreshold.vendor == vendor)
                       .where(SlaThreshold.metric == metric)).first()
    row = row or SlaThreshold(vendor=vendor, metric=metric, limit=limit)
    row.limit, row.direction = float(limit), direction
    session.add(row)
    session.flush()
    return row


def list_sla_thresholds(session: Session, *, vendor: str | None = None) -> list[SlaThreshold]:
    query = select(SlaThreshold).order_by(col(SlaThreshold.vendor), col(SlaThreshold.metric))
    if vendor is not None:
        query = query.where(SlaThreshold.vendor == vendor)
    return list(session.exec(query))


def evaluate_sla(session: Session, rows: list[VendorAnalytics]) -> list[SlaAlert]:
    """Breaches of the vendors' thresholds by these analytics rows; each is logged at WARNING."""
    thresholds = list_sla_thresholds(session)
    alerts = []
    for row in rows:
        for t in (t for t in thresholds if t.vendor == row.vendor):
            value = getattr(row, t.metric, None)
            if value is None:
                continue
            if (t.direction == "max" and value > t.limit) or (t.direction == "min" and value < t.limit):
                alert = SlaAlert(vendor=row.vendor, metric=t.metric, value=float(value), limit=t.limit,
                                 direction=t.direction)
                log.warning("SLA breach: %s", alert.message)
                alerts.append(alert)
    return alerts


def recent_window(hours: float) -> tuple[datetime, datetime]:
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    return now - timedelta(hours=hours), now
