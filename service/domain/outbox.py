"""The transactional outbox: tasks are recorded with the state they act on, published after commit.

Publishing inside a transaction lost 18 of 20 lookups here (shared/celery-redis.md): a worker
saw the message before the row. So a domain function only *records* the task; the relay in
``workers`` publishes committed rows and stamps them, at least once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from service.storage.models import OutboxMessage
from service.storage.types import utcnow

__all__ = ["KNOWN_QUEUES", "PIPELINE_QUEUES", "POLL_BATCH", "PUSH_BATCH", "QUEUES", "RECONCILE", "TRAIN",
           "claim_unpublished", "enqueue", "mark_published"]

PUSH_BATCH = "workers.vendor.push_batch"
POLL_BATCH = "workers.vendor.poll_batch"
RECONCILE = "workers.reconcile.reconcile_campaign"
TRAIN = "workers.training.train_reward_model"

# The queue of each task that does not run on ``default`` (workers.app routes the same way):
# - training: GPU machines consume only that queue;
# - reconcile: a completed batch's reconciliation must not wait behind the polls a beat tick fans out
#   (pipeline bench, 100k items: ~170 queued polls held the first reconciliation back until 91% of the
#   judgments were in, and the whole-campaign refit it then ran was the run's ~14 s tail).
QUEUES = {TRAIN: "training", RECONCILE: "reconcile"}
KNOWN_QUEUES = ("default", *sorted(set(QUEUES.values())))  # ("default", "reconcile", "training")
PIPELINE_QUEUES = "default,reconcile"  # what a CPU worker consumes (`crowdbridge worker --queues`)


def enqueue(session: Session, task: str, *args: Any) -> OutboxMessage:
    """Record ``task(*args)`` for publishing, on the task's queue, once the caller's transaction commits."""
    message = OutboxMessage(task=task, args=[str(a) if isinstance(a, uuid.UUID) else a for a in args],
                            queue=QUEUES.get(task, "default"))
    session.add(message)
    return message


def claim_unpublished(session: Session, *, limit: int = 500) -> list[OutboxMessage]:
    """Committed, unpublished messages, oldest first. On PostgreSQL the rows stay locked (SKIP LOCKED)
    until the caller commits, so two relays never publish the same rows."""
    query = (select(OutboxMessage).where(col(OutboxMessage.published_at).is_(None))
             .order_by(col(OutboxMessage.created_at)).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.exec(query))


def mark_published(session: Session, messages: list[OutboxMessage]) -> None:
    now = utcnow()
    for message in messages:
        message.published_at = now
        session.add(message)
