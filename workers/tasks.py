"""Thin, idempotent tasks keyed by ids. Each loads state, calls one domain function, commits.

A task is "much like a web view": no business rules here. Retry only what is retryable.
"""

from __future__ import annotations

import logging
from typing import Any

import httpcore  # noqa: F401  imported by httpx only when a client is built; importing it here, before the
from celery import Task  # pool forks, saves each new pool child ~0.5 s of CPU (py-spy, pipeline bench)

from connectors.errors import RateLimited, VendorUnavailable
from service.domain import batches, ingest, reconcile, reconcile_lease, retrain, sweeper
from service.settings import get_settings
from service.storage.db import session_scope
from workers.app import app
from workers.relay import relay_outbox

log = logging.getLogger(__name__)

RETRY_CAP_S = 60  # every retry countdown stays far below the visibility timeout (kombu#337)


def _session() -> Any:
    return session_scope(get_settings().resolved_database_url)


@app.task(name="workers.vendor.push_batch", bind=True, max_retries=get_settings().task_max_retries)
def push_batch(self: Task, batch_id: str) -> str:
    settings = get_settings()
    with _session() as session:
        try:
            outcome = batches.push_batch(session, settings, batch_id, task_id=self.request.id)
        except (VendorUnavailable, RateLimited) as exc:
            wait = exc.retry_after if isinstance(exc, RateLimited) else 2 ** min(self.request.retries, 6)
            log.warning("push_batch %s: %s; retry in %.1fs", batch_id, type(exc).__name__, wait)
            raise self.retry(exc=exc, countdown=min(wait, RETRY_CAP_S)) from exc
    return outcome


@app.task(name="workers.vendor.poll_open_batches")
def poll_open_batches() -> int:
    with _session() as session:
        due = ingest.due_batches(session, get_settings())
    for batch_id in due:
        poll_batch.delay(str(batch_id), True)
    return len(due)


@app.task(name="workers.vendor.poll_batch")
def poll_batch(batch_id: str, claimed: bool = False) -> str:
    """``claimed``: sent by poll_open_batches, which already judged the batch due (and pushed its
    next poll out); otherwise (a webhook hint) a wait the vendor asked for is respected."""
    with _session() as session:
        result = ingest.sync_batch(session, get_settings(), batch_id, force=claimed)
    if result.outcome == "completed":
        relay_outbox()
    return result.outcome


@app.task(name="workers.reconcile.reconcile_campaign")
def reconcile_campaign(campaign_id: str) -> dict[str, Any]:
    settings = get_settings()
    with _session() as session:
        if not reconcile.reconcile_due(session, settings, campaign_id):
            return {"skipped": "reconciled moments ago and batches are still open; a later one picks this up"}
        claimed_at = reconcile_lease.claim(session, campaign_id, lease_s=settings.reconcile_lease_s)
        if claimed_at is None:
            return {"skipped": "another reconciliation of this campaign is running; it will pick this up"}
        try:
            result = reconcile.reconcile_campaign(session, settings, campaign_id)
        finally:
            reconcile_lease.release(session, campaign_id, claimed_at)
    relay_outbox()
    return {"items": result.items, "contested": result.contested, "extra_batches": result.extra_batches,
            "mode": result.mode, "method": result.method, "touched_items": result.touched_items}


@app.task(name="workers.training.train_reward_model", soft_time_limit=None, time_limit=None)
def train_reward_model(job_id: str) -> dict[str, Any]:
    with _session() as session:
        outcome = retrain.run_retrain_job(session, get_settings(), job_id)
    relay_outbox()
    return {"status": outcome.status, "version": outcome.model_version}


@app.task(name="workers.training.apply_schedule", queue="default")
def apply_retrain_schedule() -> int:
    """Beat: the schedule half of the retraining policy (the count half runs after each reconcile)."""
    with _session() as session:
        queued = retrain.scheduled_retrains(session, get_settings())
    if queued:
        relay_outbox()
    return queued


@app.task(name="workers.outbox.relay")
def relay() -> int:
    return relay_outbox()


@app.task(name="workers.outbox.sweep")
def sweep() -> int:
    with _session() as session:
        requeued = sweeper.requeue_stuck_work(session, get_settings())
    if requeued:
        relay_outbox()
    return requeued


__all__ = ["apply_retrain_schedule", "poll_batch", "poll_open_batches", "push_batch", "reconcile_campaign", "relay", "sweep",
           "train_reward_model"]
