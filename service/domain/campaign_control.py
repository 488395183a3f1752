"""Campaign controls the API exposes beyond create/start: pause, resume, cancel, budget and deadline.

pause:  running -> paused. Batches already at the vendor keep coming back; no extra-judgment
        rounds are planned while paused (``reconcile`` plans them only for running campaigns).
        Resume with ``start_campaign`` (paused -> running; items not yet batched go out).
cancel: draft | running | paused -> cancelled. Batches not yet sent are cancelled here; batches
        at the vendor are cancelled there (the connector's idempotent ``cancel``), and a
        vendor that cannot be reached leaves its batch open, reported in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlmodel import Session, col, select

from connectors.base import VendorBatchRef
from connectors.errors import ConnectorError
from service.domain.batches import transition
from service.domain.campaigns import CampaignSpec, committed_cost, create_campaign, lock_campaign
from service.domain.vendors import connector_for
from service.errors import InvalidInput, InvalidTransition
from service.settings import Settings
from service.storage.models import Batch, BatchStatus, Campaign, CampaignStatus, SubmissionAttempt
from service.storage.types import utcnow

__all__ = ["CancelResult", "cancel_campaign", "create_checked", "pause_campaign", "update_campaign"]


def create_checked(session: Session, spec: CampaignSpec) -> Campaign:
    """``create_campaign``, which checks that a connector serves each vendor (``UnknownVendor`` if not)."""
    return create_campaign(session, spec)


def pause_campaign(session: Session, campaign: Campaign) -> Campaign:
    if campaign.status is not CampaignStatus.running:
        raise InvalidTransition("campaign", campaign.status.value, CampaignStatus.paused.value)
    lock_campaign(session, campaign)
    campaign.status = CampaignStatus.paused
    session.add(campaign)
    session.commit()
    return campaign


@dataclass
class CancelResult:
    campaign: Campaign
    cancelled_batches: int = 0
    vendor_cancel_failed: list[str] = field(default_factory=list)


def cancel_campaign(session: Session, settings: Settings, campaign: Campaign) -> CancelResult:
    if campaign.status in (CampaignStatus.completed, CampaignStatus.cancelled):
        raise InvalidTransition("campaign", campaign.status.value, CampaignStatus.cancelled.value)
    lock_campaign(session, campaign)
    campaign.status = CampaignStatus.cancelled
    session.add(campaign)
    result = CancelResult(campaign)
    open_batches = session.exec(select(Batch).where(Batch.campaign_id == campaign.id).where(
        col(Batch.status).in_([BatchStatus.pending, BatchStatus.submitting, BatchStatus.submitted]))).all()
    for batch in open_batches:
        if batch.status is BatchStatus.submitted and batch.vendor_batch_id:
            try:
                connector_for(settings, batch.vendor).cancel(VendorBatchRef(batch.vendor, batch.vendor_batch_id))
            except ConnectorError as exc:
                session.add(SubmissionAttempt(batch_id=batch.id, action="cancel", outcome="failed",
                                              error_class=type(exc).__name__, error=str(exc), finished_at=utcnow()))
                result.vendor_cancel_failed.append(str(batch.id))
                continue
            session.add(SubmissionAttempt(batch_id=batch.id, action="cancel", outcome="ok", finished_at=utcnow()))
        transition(batch, BatchStatus.cancelled)
        session.add(batch)
        result.cancelled_batches += 1
    session.commit()
    return result


def update_campaign(session: Session, campaign: Campaign, *, budget_usd: float | None = None,
                    deadline: datetime | None = None, instructions: str | None = None) -> Campaign:
    """Change the budget (not below what is already committed), the deadline or the instructions."""
    if campaign.status in (CampaignStatus.completed, CampaignStatus.cancelled):
        raise InvalidTransition("campaign", campaign.status.value, "update")
    if budget_usd is not None:
        committed = committed_cost(session, campaign)
        if budget_usd != 0 and budget_usd < committed - 1e-9:
            raise InvalidInput(f"budget {budget_usd:.2f} USD is below the {committed:.2f} USD already committed")
        campaign.budget_usd = float(budget_usd)
    if deadline is not None:
        deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
        campaign.deadline = deadline
    if instructions is not None:
        campaign.instructions = instructions
    session.add(campaign)
    session.commit()
    return campaign
