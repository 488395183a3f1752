"""Adaptive overlap: contested items go back out for more judgments, to the vendor of best measured quality,
within the campaign's rounds and budget.

Quality is each vendor's agreement with the current consensus: the share of its judgments that equal the
item's consensus label. In this campaign that is measured on its own judgments; a candidate vendor with
none here yet is scored on its record in other campaigns (the ``accuracy_vs_consensus`` vendor reports
every reconciliation stores); a vendor measured nowhere scores 0.5. Counts are smoothed as
``(agree + 1) / (n + 2)``, so ten answers do not outrank a thousand by luck. Candidates are the campaign's
own vendor and its ``extra_vendors``; ties go to the campaign's own vendor, then to the listed order.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.domain.agreement_rows import report_row
from service.domain.campaigns import committed_cost, plan_batches
from service.settings import Settings
from service.storage.models import AgreementReport, Batch, BatchItem, BatchStatus, Campaign, CampaignStatus

__all__ = ["EXTRA_RATERS", "ExtraRound", "request_extra_judgments", "vendor_agreement", "vendor_quality_rows"]

log = logging.getLogger(__name__)

EXTRA_RATERS = 2  # judgments added per contested item per extra round
QUALITY_METRIC = "accuracy_vs_consensus"
OPEN = (BatchStatus.pending, BatchStatus.submitting, BatchStatus.submitted)


@dataclass(frozen=True)
class ExtraRound:
    batches: int = 0
    items: int = 0
    vendor: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # vendor -> smoothed agreement with consensus


def vendor_agreement(frame: pd.DataFrame, labels: pd.Series) -> dict[str, tuple[int, int]]:
    """vendor -> (judgments equal to the item's consensus label, judgments) over ``frame``."""
    if frame.empty:
        return {}
    agree = frame["label"].to_numpy() == frame["task"].map(labels).to_numpy()
    grouped = frame.assign(agree=agree).groupby("vendor")["agree"].agg(["sum", "size"])
    return {str(v): (int(r["sum"]), int(r["size"])) for v, r in grouped.iterrows()}


def vendor_quality_rows(campaign: Campaign, agreement: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Each vendor's agreement with the consensus as ``AgreementReport`` rows (dicts, for one bulk insert)."""
    return [report_row(campaign, "vendor", vendor, QUALITY_METRIC, agree / n, n)
            for vendor, (agree, n) in agreement.items() if n]


def _elsewhere(session: Session, campaign: Campaign, vendor: str) -> tuple[int, int]:
    """(agree, n) of ``vendor`` over the other campaigns' latest reconciliations."""
    rows = session.exec(select(AgreementReport.value, AgreementReport.n)
                        .where(AgreementReport.scope == "vendor").where(AgreementReport.scope_key == vendor)
                        .where(AgreementReport.metric == QUALITY_METRIC)
                        .where(AgreementReport.campaign_id != campaign.id)).all()
    n = sum(int(k) for v, k in rows if v is not None)
    return round(sum(float(v) * int(k) for v, k in rows if v is not None)), n


def rank_vendors(session: Session, campaign: Campaign,
                 agreement: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Candidate vendor -> smoothed agreement with consensus, best first (ties: the campaign's order)."""
    candidates = list(dict.fromkeys([campaign.vendor, *(campaign.extra_vendors or [])]))
    scores = {}
    for vendor in candidates:
        agree, n = agreement.get(vendor, (0, 0))
        if n == 0:
            agree, n = _elsewhere(session, campaign, vendor)
        scores[vendor] = (agree + 1) / (n + 2)
    order = sorted(candidates, key=lambda v: (-scores[v], candidates.index(v)))
    return {v: scores[v] for v in order}


def request_extra_judgments(session: Session, settings: Settings, campaign: Campaign, contested: list[uuid.UUID],
                            agreement: dict[str, tuple[int, int]]) -> ExtraRound:
    """Contested items not already out again, within rounds and budget, go to the best vendor for
    ``EXTRA_RATERS`` more judgments each."""
    if not contested or campaign.max_extra_rounds == 0 or campaign.status is not CampaignStatus.running:
        return ExtraRound()
    # the highest extra round each item has been in; every item was in round 0, so only the few that went out
    # again are read (all items: 0.7 s at 100k). No IN list: contested may exceed PostgreSQL's parameter limit.
    rounds = dict(session.exec(select(BatchItem.item_id, func.max(Batch.round)).join(Batch)
                               .where(Batch.campaign_id == campaign.id).where(Batch.round > 0)
                               .group_by(BatchItem.item_id)).all())
    open_items = set(session.exec(select(BatchItem.item_id).join(Batch).where(Batch.campaign_id == campaign.id)
                                  .where(col(Batch.status).in_(OPEN))))
    eligible = [i for i in contested if i not in open_items and rounds.get(i, 0) < campaign.max_extra_rounds]
    if not eligible:
        return ExtraRound()
    scores = rank_vendors(session, campaign, agreement)
    vendor = next(iter(scores))
    reward = settings.vendor(vendor).reward_per_judgment
    if campaign.budget_usd > 0 and reward > 0:
        affordable = int((campaign.budget_usd - committed_cost(session, campaign)) // (EXTRA_RATERS * reward))
        eligible = eligible[:max(0, affordable)]
    if not eligible:
        return ExtraRound(vendor=vendor, scores=scores)
    next_round = max(rounds.values(), default=0) + 1
    batches = plan_batches(session, settings, campaign, eligible, raters_per_item=EXTRA_RATERS,
                           round_no=next_round, vendor=vendor)
    log.info("campaign %s: %d contested items to %s for round %d (vendor scores %s)", campaign.name,
             len(eligible), vendor, next_round, {k: round(v, 3) for k, v in scores.items()})
    return ExtraRound(batches=len(batches), items=len(eligible), vendor=vendor, scores=scores)
