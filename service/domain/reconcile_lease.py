"""One reconciliation per campaign at a time, without holding a lock while it computes.

Each completed batch enqueues a reconcile. Running them side by side would have each refit the
whole campaign while the others wait on the campaign's row lock, starving the polls (seen in the
chaos bench: three of four pool processes blocked). Instead a reconcile *claims* the campaign with
one conditional UPDATE (atomic on PostgreSQL and SQLite); a second one finds it claimed and returns
at once. On release, if a batch completed after the claim, another reconcile is enqueued, so no
batch's judgments are left out. A crashed reconciler's claim expires after the lease.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from service.domain import outbox
from service.storage.models import Batch, Campaign
from service.storage.types import utcnow

__all__ = ["claim", "release"]


def claim(session: Session, campaign_id: uuid.UUID | str, *, lease_s: float) -> datetime | None:
    """Claim the campaign for one reconciliation; None when another one holds a live claim."""
    now = utcnow()
    table = Campaign.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table).where(table.c.id == uuid.UUID(str(campaign_id)))
        .where(or_(table.c.reconcile_claimed_at.is_(None),
                   table.c.reconcile_claimed_at < now - timedelta(seconds=lease_s)))
        .values(reconcile_claimed_at=now))
    session.commit()
    return now if result.rowcount == 1 else None  # type: ignore[attr-defined]


def release(session: Session, campaign_id: uuid.UUID | str, claimed_at: datetime) -> bool:
    """Drop the claim; enqueue another reconcile when a batch completed since the claim. Returns that."""
    session.rollback()
    cid = uuid.UUID(str(campaign_id))
    table = Campaign.__table__  # type: ignore[attr-defined]
    session.execute(update(table).where(table.c.id == cid).where(table.c.reconcile_claimed_at == claimed_at)
                    .values(reconcile_claimed_at=None))
    newer = session.exec(select(Batch.id).where(Batch.campaign_id == cid)
                         .where(col(Batch.completed_at) >= claimed_at)).first()
    if newer is not None:
        outbox.enqueue(session, outbox.RECONCILE, cid)
    session.commit()
    return newer is not None
