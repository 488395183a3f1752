"""Recovers work whose message was lost (a Redis restart without persistence, a killed worker
before the visibility timeout): the database, not the broker, is the record of what is owed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.domain import outbox, training_lease
from service.settings import Settings
from service.storage.models import (
    Batch,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    OutboxMessage,
    RetrainJob,
    RetrainStatus,
)
from service.storage.types import utcnow

__all__ = ["requeue_stuck_work"]


def _pending_args(session: Session, task: str) -> set[str]:
    """Args of messages of ``task`` still waiting in the outbox (no need to add another)."""
    rows = session.exec(select(OutboxMessage.args).where(OutboxMessage.task == task)
                        .where(col(OutboxMessage.published_at).is_(None)))
    return {str(args[0]) for args in rows if args}


def requeue_stuck_work(session: Session, settings: Settings) -> int:
    now = utcnow()
    stale = now - timedelta(seconds=settings.stuck_after_s)
    count = 0

    waiting = _pending_args(session, outbox.PUSH_BATCH)
    for batch in session.exec(select(Batch).where(col(Batch.status).in_([BatchStatus.pending, BatchStatus.submitting]))
                              .where(Batch.updated_at < stale)):
        if str(batch.id) not in waiting:
            batch.updated_at = now  # one requeue per stuck period
            session.add(batch)
            outbox.enqueue(session, outbox.PUSH_BATCH, batch.id)
            count += 1

    waiting = _pending_args(session, outbox.RECONCILE)
    last_done = dict(session.exec(select(Batch.campaign_id, func.max(Batch.completed_at))
                                  .join(Campaign, col(Campaign.id) == Batch.campaign_id)
                                  .where(col(Campaign.status).in_([CampaignStatus.running, CampaignStatus.completed]))
                                  .where(Batch.status == BatchStatus.completed).group_by(Batch.campaign_id)).all())
    last_reconciled = dict(session.exec(select(ConsensusLabel.campaign_id, func.max(ConsensusLabel.computed_at))
                                        .group_by(ConsensusLabel.campaign_id)).all())
    for campaign_id, done_at in last_done.items():
        seen = last_reconciled.get(campaign_id)
        if done_at and done_at < stale and (seen is None or seen < done_at) and str(campaign_id) not in waiting:
            outbox.enqueue(session, outbox.RECONCILE, campaign_id)
            count += 1

    waiting = _pending_args(session, outbox.TRAIN)
    dead = now - timedelta(seconds=training_lease.STALE_S)
    for job in session.exec(select(RetrainJob).where(col(RetrainJob.status).in_([RetrainStatus.queued,
                                                                                  RetrainStatus.running]))):
        lost_queued = job.status is RetrainStatus.queued and job.created_at < stale
        # a running job's worker refreshes its heartbeat; one silent for STALE_S died (a long run is alive)
        seen = training_lease.last_sign_of_life(job)
        died_running = job.status is RetrainStatus.running and seen is not None and seen < dead
        if (lost_queued or died_running) and str(job.id) not in waiting:
            job.created_at = now  # the message goes out again; the job is claimed afresh when it runs
            session.add(job)
            outbox.enqueue(session, outbox.TRAIN, job.id)
            count += 1
    # the retraining policy once more: a trigger dropped while another run of the family was active
    # (debounce) or lost with its message is picked up here
    from service.domain.retrain import maybe_enqueue_retrain

    # a job reads its pairs when it starts, so consensus written after the newest job's start may be unused
    # (the model's own creation time is later: a reconciliation during training would be missed by it)
    newest_job = dict(session.exec(select(RetrainJob.model_family, func.max(RetrainJob.started_at))
                                   .group_by(RetrainJob.model_family)).all())
    for campaign in session.exec(select(Campaign).where(col(Campaign.status).in_(
            [CampaignStatus.running, CampaignStatus.completed]))):
        reconciled = last_reconciled.get(campaign.id)
        read = newest_job.get(campaign.model_family)
        if reconciled is None or (read is not None and read > reconciled):
            continue  # nothing reconciled since the family's newest run read its pairs
        if maybe_enqueue_retrain(session, settings, campaign, trigger="policy") is not None:
            count += 1
    session.commit()
    return count
