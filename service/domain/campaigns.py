"""Campaign use cases: create, load items, start (plan batches), status, export."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, cast, func, update
from sqlmodel import Session, col, select

from connectors.base import JudgmentKind, valid_label
from connectors.registry import get_connector_class
from service.domain import outbox
from service.errors import InvalidInput, InvalidTransition, NotFound
from service.settings import Settings
from service.storage.bulk import bulk_insert
from service.storage.models import (
    Batch,
    BatchItem,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Item,
    Judgment,
    QuarantinedPayload,
)

__all__ = ["PRIMARY_CONSENSUS", "CampaignSpec", "CampaignStatusReport", "add_items", "campaign_status", "committed_cost",
           "create_campaign", "get_campaign", "lock_campaign", "plan_batches", "start_campaign"]


CHUNK = 10_000  # ids per IN (...) list
PRIMARY_CONSENSUS = "auto"  # the consensus rows downstream uses (reward data, status, contested items)


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    kind: JudgmentKind
    raters_per_item: int = 5
    instructions: str = ""
    vendor: str = "simulated"
    rating_scale: int = 5
    budget_usd: float = 0.0  # 0 = unlimited
    deadline: datetime | None = None
    model_family: str = "default"
    max_extra_rounds: int = 1
    extra_vendors: tuple[str, ...] = ()  # vendors extra rounds may go to, by measured quality


def get_campaign(session: Session, ref: str | uuid.UUID) -> Campaign:
    """By id or by name."""
    campaign: Campaign | None = None
    try:
        campaign = session.get(Campaign, uuid.UUID(str(ref)))
    except ValueError:
        pass
    if campaign is None:
        campaign = session.exec(select(Campaign).where(Campaign.name == str(ref))).first()
    if campaign is None:
        raise NotFound("campaign", ref)
    return campaign


def lock_campaign(session: Session, campaign: Campaign) -> None:
    """Serialize writers of one campaign until the transaction ends (row lock; SQLite's write lock)."""
    table = Campaign.__table__  # type: ignore[attr-defined]
    session.execute(update(table).where(table.c.id == campaign.id).values(name=table.c.name))


def create_campaign(session: Session, spec: CampaignSpec) -> Campaign:
    if session.exec(select(Campaign).where(Campaign.name == spec.name)).first() is not None:
        raise InvalidInput(f"a campaign named {spec.name!r} already exists; pick another name")
    if spec.kind is JudgmentKind.rating and not 2 <= spec.rating_scale <= 10:
        raise InvalidInput("rating_scale must be between 2 and 10 (5 or 7 for Likert)")
    for vendor in (spec.vendor, *spec.extra_vendors):
        get_connector_class(vendor)  # UnknownVendor, naming the connectors there are
    campaign = Campaign(name=spec.name, kind=spec.kind, raters_per_item=spec.raters_per_item,
                        instructions=spec.instructions, vendor=spec.vendor, rating_scale=spec.rating_scale,
                        budget_usd=spec.budget_usd, deadline=spec.deadline, model_family=spec.model_family,
                        max_extra_rounds=spec.max_extra_rounds,
                        extra_vendors=[v for v in dict.fromkeys(spec.extra_vendors) if v != spec.vendor])
    session.add(campaign)
    session.flush()
    return campaign


def _item_from_record(campaign: Campaign, record: Mapping[str, Any], line: int) -> Item:
    where = f"item {line}"
    if not isinstance(record, Mapping):
        raise InvalidInput(f"{where}: expected an object with prompt and responses")
    prompt = record.get("prompt")
    raw_responses = record.get("responses")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInput(f"{where}: 'prompt' must be a non-empty string")
    if not isinstance(raw_responses, list) or len(raw_responses) < (1 if campaign.kind in (
            JudgmentKind.rating, JudgmentKind.binary) else 2):
        raise InvalidInput(f"{where}: 'responses' must list the model responses (2..26 for {campaign.kind.value})")
    if len(raw_responses) > 26:
        raise InvalidInput(f"{where}: at most 26 responses per item")
    responses = []
    for r in raw_responses:
        if isinstance(r, str):
            responses.append({"model_id": None, "text": r})
        elif isinstance(r, Mapping) and isinstance(r.get("text"), str):
            responses.append({"model_id": r.get("model_id"), "text": r["text"]})
        else:
            raise InvalidInput(f"{where}: each response is a string or {{model_id, text}}")
    if campaign.kind is JudgmentKind.pairwise and len(responses) != 2:
        raise InvalidInput(f"{where}: a pairwise item has exactly 2 responses, got {len(responses)}")
    gold = record.get("gold")
    if gold is not None and not valid_label(campaign.kind, str(gold), len(responses), campaign.rating_scale):
        raise InvalidInput(f"{where}: gold {gold!r} is not a valid {campaign.kind.value} label")
    external_id = str(record.get("id") or record.get("external_id") or line)
    meta = record.get("metadata") or {}
    return Item(campaign_id=campaign.id, external_id=external_id, prompt=prompt, responses=responses,
                gold=str(gold) if gold is not None else None, meta=dict(meta))


def add_items(session: Session, campaign: Campaign, records: Iterable[Mapping[str, Any]]) -> int:
    """Validate every record first, then insert all of them; one bad record rejects the upload, saying which."""
    if campaign.status not in (CampaignStatus.draft, CampaignStatus.paused, CampaignStatus.running):
        raise InvalidTransition("campaign", campaign.status.value, "add items")
    items = [_item_from_record(campaign, r, i) for i, r in enumerate(records, start=1)]
    if not items:
        raise InvalidInput("no items in the upload")
    seen = {i.external_id for i in items}
    if len(seen) != len(items):
        raise InvalidInput("duplicate item ids in the upload")
    existing: set[str] = set()
    ordered = sorted(seen)
    for start in range(0, len(ordered), CHUNK):  # PostgreSQL takes at most 65,535 parameters per statement
        existing.update(session.exec(select(Item.external_id).where(Item.campaign_id == campaign.id)
                                     .where(col(Item.external_id).in_(ordered[start:start + CHUNK]))))
    if existing:
        raise InvalidInput(f"{len(existing)} item ids already exist in this campaign, e.g. {sorted(existing)[0]!r}")
    bulk_insert(session, Item.__table__, [item.model_dump() for item in items])  # type: ignore[attr-defined]
    return len(items)


def plan_batches(session: Session, settings: Settings, campaign: Campaign, item_ids: list[uuid.UUID], *,
                 raters_per_item: int, round_no: int = 0, vendor: str | None = None) -> list[Batch]:
    """Cut items into vendor batches (``vendor``, default the campaign's), each with a stable idempotency
    key, and record their push tasks."""
    vendor = vendor or campaign.vendor
    reward = settings.vendor(vendor).reward_per_judgment
    # a vendor that returns one (consensus) answer per task cannot be audited for rater agreement
    auditable = get_connector_class(vendor).capabilities.per_rater_identity
    chunks = [item_ids[start:start + settings.batch_size] for start in range(0, len(item_ids), settings.batch_size)]
    batches = [Batch(campaign_id=campaign.id, vendor=vendor, round=round_no, raters_per_item=raters_per_item,
                     n_items=len(chunk), idempotency_key=f"cb-{uuid.uuid4().hex}",
                     judgments_expected=len(chunk) * raters_per_item,
                     expected_cost=len(chunk) * raters_per_item * reward, auditable=auditable) for chunk in chunks]
    session.add_all(batches)
    session.flush()  # one INSERT for all batches, then one for all their items (was a flush per batch)
    bulk_insert(session, BatchItem.__table__,  # type: ignore[attr-defined]
                [{"batch_id": batch.id, "item_id": i} for batch, chunk in zip(batches, chunks) for i in chunk])
    for batch in batches:
        outbox.enqueue(session, outbox.PUSH_BATCH, batch.id)
    return batches


def committed_cost(session: Session, campaign: Campaign) -> float:
    total = session.exec(select(func.coalesce(func.sum(Batch.expected_cost), 0.0))
                         .where(Batch.campaign_id == campaign.id)
                         .where(Batch.status != BatchStatus.cancelled)).one()
    return float(total)


def start_campaign(session: Session, settings: Settings, campaign: Campaign) -> list[Batch]:
    """draft -> running: every item not yet in a batch goes out, within the budget."""
    if campaign.status not in (CampaignStatus.draft, CampaignStatus.paused):
        raise InvalidTransition("campaign", campaign.status.value, CampaignStatus.running.value)
    batched = select(BatchItem.item_id).join(Batch).where(Batch.campaign_id == campaign.id)
    pending = list(session.exec(select(Item.id).where(Item.campaign_id == campaign.id)
                                .where(col(Item.id).not_in(batched)).order_by(col(Item.created_at), col(Item.id))))
    if not pending and campaign.status is CampaignStatus.draft:
        raise InvalidInput("the campaign has no items; upload items before starting it")
    reward = settings.vendor(campaign.vendor).reward_per_judgment
    if campaign.budget_usd > 0:
        cost = len(pending) * campaign.raters_per_item * reward
        if committed_cost(session, campaign) + cost > campaign.budget_usd + 1e-9:
            raise InvalidInput(f"budget {campaign.budget_usd:.2f} USD is below the first pass's cost "
                               f"{cost:.2f} USD ({len(pending)} items x {campaign.raters_per_item} raters x "
                               f"{reward} USD); raise the budget or lower raters_per_item")
    resumed = campaign.status is CampaignStatus.paused
    campaign.status = CampaignStatus.running
    session.add(campaign)
    if resumed:  # batches held back while paused go out now
        for held in session.exec(select(Batch).where(Batch.campaign_id == campaign.id)
                                 .where(Batch.status == BatchStatus.pending)):
            outbox.enqueue(session, outbox.PUSH_BATCH, held.id)
    return plan_batches(session, settings, campaign, pending, raters_per_item=campaign.raters_per_item)


@dataclass(frozen=True)
class CampaignStatusReport:
    campaign: Campaign
    items: int
    batches_by_status: dict[str, int]
    judgments: int
    judgments_expected: int
    quarantined: int
    consensus_items: int
    contested_items: int
    committed_cost_usd: float
    spent_usd: float


def campaign_status(session: Session, campaign: Campaign, *, method: str = PRIMARY_CONSENSUS) -> CampaignStatusReport:
    cid = campaign.id
    by_status = dict(session.exec(select(Batch.status, func.count()).where(Batch.campaign_id == cid)
                                  .group_by(Batch.status)).all())
    expected = session.exec(select(func.coalesce(func.sum(Batch.judgments_expected), 0))
                            .where(Batch.campaign_id == cid).where(Batch.status != BatchStatus.cancelled)).one()
    judgments, spent = session.exec(select(func.count(), func.coalesce(func.sum(Judgment.cost), 0.0))
                                    .where(Judgment.campaign_id == cid)).one()
    quarantined = session.exec(select(func.count()).select_from(QuarantinedPayload)
                               .join(Batch, col(QuarantinedPayload.batch_id) == Batch.id)
                               .where(Batch.campaign_id == cid)).one()
    consensus, contested = session.exec(
        select(func.count(), func.coalesce(func.sum(cast(ConsensusLabel.contested, Integer)), 0))
        .where(ConsensusLabel.campaign_id == cid).where(ConsensusLabel.method == method)).one()
    items = session.exec(select(func.count()).select_from(Item).where(Item.campaign_id == cid)).one()
    return CampaignStatusReport(
        campaign=campaign, items=items, batches_by_status={getattr(k, "value", k): v for k, v in by_status.items()},
        judgments=judgments, judgments_expected=int(expected), quarantined=quarantined, consensus_items=consensus,
        contested_items=int(contested), committed_cost_usd=committed_cost(session, campaign), spent_usd=float(spent))
