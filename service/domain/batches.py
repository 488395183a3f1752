"""Batch state machine and the push use case: a batch reaches its vendor exactly once.

    pending --> submitting --> submitted --> completed
       |            |  ^           |
       |            v  |           +--> cancelled / failed
       +--------> cancelled        (submitting -> submitting: a retry after a killed worker)

Exactly once: our idempotency key travels with every submit. If a worker dies after the
vendor accepted the batch but before we recorded it, the retry sends the same key and the
vendor answers with the batch it already has (``VendorBatchRef.created`` is False): it is
never created, nor paid for, twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session, col, select

from connectors.base import BatchRequest, TaskSpec, VendorBatchRef
from connectors.errors import ConnectorError
from service.domain.redaction import Redactor
from service.domain.vendors import connector_for
from service.errors import InvalidTransition, NotFound
from service.settings import Settings
from service.storage.models import Batch, BatchItem, BatchStatus, Campaign, CampaignStatus, Item, RedactionRecord, SubmissionAttempt
from service.storage.bulk import bulk_insert
from service.storage.types import utcnow

__all__ = ["TRANSITIONS", "batch_request", "load_batch", "push_batch", "transition"]

S = BatchStatus
TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    S.pending: frozenset({S.submitting, S.cancelled}),
    S.submitting: frozenset({S.submitting, S.submitted, S.pending, S.failed, S.cancelled}),
    S.submitted: frozenset({S.completed, S.cancelled, S.failed}),
    S.completed: frozenset(),
    S.failed: frozenset({S.pending}),
    S.cancelled: frozenset(),
}


def transition(batch: Batch, to: BatchStatus) -> None:
    if to not in TRANSITIONS[batch.status]:
        raise InvalidTransition("batch", batch.status.value, to.value)
    batch.status = to
    batch.updated_at = utcnow()


def load_batch(session: Session, batch_id: uuid.UUID | str, *, for_update: bool = False) -> Batch:
    query = select(Batch).where(Batch.id == uuid.UUID(str(batch_id)))
    batch = session.exec(query.with_for_update() if for_update else query).first()
    if batch is None:
        raise NotFound("batch", batch_id)
    return batch


def batch_request(session: Session, batch: Batch, campaign: Campaign, settings: Settings) -> BatchRequest:
    """What the vendor receives: the batch's items with PII redacted (and the redaction recorded)."""
    items = session.exec(select(Item).join(BatchItem, col(BatchItem.item_id) == Item.id)
                         .where(BatchItem.batch_id == batch.id).order_by(col(Item.id))).all()
    redactor = Redactor(settings.redaction_patterns, enabled=settings.redaction_enabled)
    tasks, records = [], []
    for item in items:
        prompt, record = redactor.redact(item.prompt)
        responses = []
        for response in item.responses:
            text, found = redactor.redact(response["text"])
            record.merge(found)
            responses.append(text)
        if record:
            records.append({"batch_id": batch.id, "item_id": item.id, "counts": record.counts,
                            "digests": record.digests, "created_at": utcnow()})
        tasks.append(TaskSpec(item_id=str(item.id), prompt=prompt, responses=tuple(responses), gold=item.gold))
    # a retry redacts the same way; keep the first record
    bulk_insert(session, RedactionRecord.__table__, records, on_conflict=[])  # type: ignore[attr-defined]
    return BatchRequest(batch_id=str(batch.id), idempotency_key=batch.idempotency_key,
                        campaign_id=str(campaign.id), kind=campaign.kind, instructions=campaign.instructions,
                        raters_per_item=batch.raters_per_item, tasks=tuple(tasks), rating_scale=campaign.rating_scale,
                        reward_per_judgment=settings.vendor(batch.vendor).reward_per_judgment)


def push_batch(session: Session, settings: Settings, batch_id: uuid.UUID | str, *,
               task_id: str | None = None) -> str:
    """Submit one batch. Returns what happened: "skipped", "submitted" or "replayed".

    Raises a retryable ``ConnectorError`` (the worker retries with backoff) after recording
    the attempt; a non-retryable one marks the batch failed and is not raised.
    """
    batch = load_batch(session, batch_id, for_update=True)
    if batch.status not in (S.pending, S.submitting):
        return "skipped"  # already done, cancelled or failed: the world says there is nothing to do
    campaign = session.get(Campaign, batch.campaign_id)
    assert campaign is not None
    if campaign.status is CampaignStatus.paused:
        return "paused"  # stays pending; starting the campaign again re-queues it
    if campaign.status is CampaignStatus.cancelled:
        transition(batch, S.cancelled)
        session.add(batch)
        session.commit()
        return "cancelled"
    transition(batch, S.submitting)
    attempt = SubmissionAttempt(batch_id=batch.id, action="submit", task_id=task_id)
    session.add_all([batch, attempt])
    request = batch_request(session, batch, campaign, settings)
    session.commit()  # the attempt is on record before the vendor hears of it

    try:
        ref: VendorBatchRef = connector_for(settings, batch.vendor).submit_batch(request)
    except ConnectorError as exc:
        batch = load_batch(session, batch_id, for_update=True)
        attempt.outcome, attempt.error_class, attempt.error = (
            "retryable" if exc.retryable else "failed", type(exc).__name__, str(exc))
        attempt.finished_at = utcnow()
        batch.error = str(exc)
        if not exc.retryable and batch.status is S.submitting:
            transition(batch, S.failed)
        session.add_all([batch, attempt])
        session.commit()
        if exc.retryable:
            raise
        return "failed"

    batch = load_batch(session, batch_id, for_update=True)
    attempt.outcome, attempt.finished_at = ("submitted" if ref.created else "replayed"), utcnow()
    if batch.status is S.submitting:
        transition(batch, S.submitted)
        batch.vendor_batch_id = ref.vendor_batch_id
        batch.submitted_at = utcnow()
        batch.next_poll_at = utcnow() + timedelta(seconds=settings.poll_interval_s)
        batch.error = None
    session.add_all([batch, attempt])
    session.commit()
    return attempt.outcome
