"""Poll a submitted batch and store what came back: every rater answer once, bad records quarantined.

A page is stored in one transaction together with the cursor that follows it, so a crash
re-reads at most that page; re-delivered judgments hit the (vendor, vendor_judgment_id)
unique key and are ignored. Waits the vendor asks for (429 Retry-After, 5xx backoff) are
written to ``batch.next_poll_at``: the database schedules the next poll, not a countdown.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from connectors.base import BatchState, MalformedRecord, ResultPage, VendorBatchRef, VendorJudgment, valid_label
from connectors.errors import ConnectorError, RateLimited
from service.domain import outbox
from service.domain.batches import load_batch, transition
from service.domain.vendors import connector_for
from service.settings import Settings
from service.storage.models import Batch, BatchItem, BatchStatus, Campaign, Item, Judgment, QuarantinedPayload
from service.storage.models import SubmissionAttempt
from service.storage.bulk import bulk_insert
from service.storage.types import utcnow

__all__ = ["StoreResult", "SyncResult", "batch_items", "quarantine", "store_page", "sync_batch"]


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass
class SyncResult:
    outcome: str  # skipped | waiting | polled | completed | rate_limited | unavailable
    store: StoreResult = field(default_factory=StoreResult)


def quarantine(session: Session, *, vendor: str, batch_id: uuid.UUID | None, records: list[MalformedRecord],
               source: str = "poll") -> int:
    """Keep each bad record whole with its reason; the same bytes re-delivered are kept once."""
    if not records:
        return 0
    rows = {}
    for r in records:
        fingerprint = hashlib.sha256(f"{batch_id}|{source}|{r.raw}".encode()).hexdigest()
        rows[fingerprint] = {"id": uuid.uuid4(), "vendor": vendor, "batch_id": batch_id, "source": source,
                             "reason": r.reason, "raw": r.raw, "received_at": utcnow(), "fingerprint": fingerprint}
    return bulk_insert(session, QuarantinedPayload.__table__, list(rows.values()),  # type: ignore[attr-defined]
                       on_conflict=["vendor", "fingerprint"], returning="id")


def batch_items(session: Session, batch: Batch) -> dict[str, tuple[uuid.UUID, int]]:
    """Item id as ``str(UUID)`` -> (the id, its number of responses), for every item of ``batch``: what a
    page's answers are checked against. Counted in SQL: fetching the responses themselves (their texts, as JSON) only to
    take len() was most of this query's cost."""
    length = func.jsonb_array_length if session.get_bind().dialect.name == "postgresql" else func.json_array_length
    return {str(item_id): (item_id, n) for item_id, n in session.execute(
        select(Item.id, length(Item.responses)).join(BatchItem, col(BatchItem.item_id) == Item.id)
        .where(BatchItem.batch_id == batch.id))}


def store_page(session: Session, batch: Batch, campaign: Campaign, page: ResultPage, *,
               source: str = "poll", items: dict[str, tuple[uuid.UUID, int]] | None = None) -> StoreResult:
    """Store one page's judgments (idempotently) and quarantine what cannot be stored, saying why.

    ``items``: ``batch_items(session, batch)`` when the caller stores several pages of one batch
    (looked up here otherwise)."""
    result = StoreResult()
    bad = list(page.malformed)
    if page.judgments:
        if items is None:
            items = batch_items(session, batch)
        rows = []
        now = utcnow()
        # the same for every row: read once (each ORM attribute read costs more than building the row's dict)
        kind, scale = campaign.kind, campaign.rating_scale
        campaign_id, batch_id, vendor = campaign.id, batch.id, batch.vendor
        for j in page.judgments:
            item_id, n = items.get(j.item_id, (None, 0))
            if item_id is None:
                bad.append(MalformedRecord(raw=_raw_text(j), reason=f"task {j.item_id!r} is not an item of batch "
                                                                      f"{batch_id}"))
            elif not valid_label(kind, j.label, n, scale):
                bad.append(MalformedRecord(raw=_raw_text(j), reason=f"label {j.label!r} is not a valid "
                                                                      f"{kind.value} answer for an item "
                                                                      f"with {n} responses"))
            else:  # no "id": bulk_insert has the database make it
                rows.append({"campaign_id": campaign_id, "item_id": item_id, "batch_id": batch_id, "vendor": vendor,
                             "vendor_judgment_id": j.vendor_judgment_id, "rater_id": j.rater_id, "label": j.label,
                             "started_at": j.started_at, "submitted_at": j.submitted_at, "received_at": now,
                             "cost": j.cost, "raw": j.raw})
        if rows:
            inserted = bulk_insert(session, Judgment.__table__, rows,  # type: ignore[attr-defined]
                                   on_conflict=["vendor", "vendor_judgment_id"], returning="id")
            result.stored = inserted
            result.duplicates = len(rows) - inserted
    result.quarantined = quarantine(session, vendor=batch.vendor, batch_id=batch.id, records=bad, source=source)
    return result


def _raw_text(j: VendorJudgment) -> str:
    return json.dumps(j.raw or {"id": j.vendor_judgment_id, "task_id": j.item_id, "worker_id": j.rater_id,
                                "answer": j.label, "submitted_at": j.submitted_at}, sort_keys=True, default=str)


def _record_failure(session: Session, batch: Batch, exc: ConnectorError, task_id: str | None) -> None:
    session.add(SubmissionAttempt(batch_id=batch.id, action="poll", task_id=task_id, outcome="retryable"
                                  if exc.retryable else "failed", error_class=type(exc).__name__, error=str(exc),
                                  finished_at=utcnow()))


def sync_batch(session: Session, settings: Settings, batch_id: uuid.UUID | str, *,
               task_id: str | None = None, force: bool = False) -> SyncResult:
    """Poll the vendor for one batch and store every new page; complete the batch when all is in."""
    batch = load_batch(session, batch_id)
    if batch.status is not BatchStatus.submitted or batch.vendor_batch_id is None:
        return SyncResult("skipped")
    now = utcnow()
    if not force and batch.next_poll_at is not None and batch.next_poll_at > now + timedelta(seconds=0.5):
        return SyncResult("waiting")
    campaign = session.get(Campaign, batch.campaign_id)
    assert campaign is not None
    connector = connector_for(settings, batch.vendor)
    ref = VendorBatchRef(vendor=batch.vendor, vendor_batch_id=batch.vendor_batch_id)
    total = StoreResult()
    items: dict[str, tuple[uuid.UUID, int]] | None = None
    try:
        status = connector.poll(ref)
        for _ in range(settings.fetch_page_limit):
            page = connector.fetch_judgments(ref, batch.fetch_cursor)
            if items is None and page.judgments:
                items = batch_items(session, batch)  # once per poll, not per page
            stored = store_page(session, batch, campaign, page, items=items)
            total.stored += stored.stored
            total.duplicates += stored.duplicates
            total.quarantined += stored.quarantined
            batch.fetch_cursor = page.cursor
            batch.judgments_done += stored.stored
            batch.updated_at = utcnow()
            session.add(batch)
            session.commit()  # the page and the cursor after it, together
            if not page.has_more:
                break
    except ConnectorError as exc:
        session.rollback()
        batch = load_batch(session, batch_id)
        wait = exc.retry_after if isinstance(exc, RateLimited) else settings.poll_interval_s * 2
        if not exc.retryable:
            batch.error = str(exc)
        batch.next_poll_at = utcnow() + timedelta(seconds=wait)
        _record_failure(session, batch, exc, task_id)
        session.add(batch)
        session.commit()
        return SyncResult("rate_limited" if isinstance(exc, RateLimited) else "unavailable", total)

    batch = load_batch(session, batch_id, for_update=True)
    if batch.status is not BatchStatus.submitted:
        return SyncResult("skipped", total)
    finished = status.state in (BatchState.completed, BatchState.cancelled, BatchState.failed)
    caught_up = not page.has_more
    if finished and caught_up:
        transition(batch, BatchStatus.completed)
        batch.completed_at = utcnow()
        outbox.enqueue(session, outbox.RECONCILE, batch.campaign_id)
        outcome = "completed"
    else:
        batch.next_poll_at = utcnow() + timedelta(seconds=settings.poll_interval_s)
        outcome = "polled"
    session.add(batch)
    session.commit()
    return SyncResult(outcome, total)


def due_batches(session: Session, settings: Settings, *, limit: int = 200) -> list[uuid.UUID]:
    """Submitted batches whose next poll is due, claimed (next poll pushed out) so that the next
    beat tick does not send a second poll while this one is still in flight."""
    now = utcnow()
    query = (select(Batch).where(Batch.status == BatchStatus.submitted)
             .where((col(Batch.next_poll_at).is_(None)) | (col(Batch.next_poll_at) <= now))
             .order_by(col(Batch.next_poll_at)).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = list(session.exec(query))
    claim = now + timedelta(seconds=max(settings.poll_interval_s * 5, 10.0))
    for batch in due:
        batch.next_poll_at = claim  # sync_batch sets the real next poll when it finishes
        session.add(batch)
    session.commit()
    return [b.id for b in due]
