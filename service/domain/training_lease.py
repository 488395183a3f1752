"""One worker per retrain job, however long it trains.

A training run can outlast Redis' visibility timeout (an hour of fine-tuning on a GPU machine), after which
the broker hands the same message to another training worker; and a worker can die mid-run. So the job
itself is the lease: a worker *claims* it with one conditional UPDATE (queued, or running with a stale
heartbeat), and while it trains a background thread refreshes ``heartbeat_at`` every ``HEARTBEAT_S``. A
second delivery of the message finds the job claimed and alive and returns at once; a job whose heartbeat
stopped for ``STALE_S`` (its worker died) may be claimed again, by the redelivered message or by the sweeper.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session

from service.storage.models import RetrainJob, RetrainStatus
from service.storage.types import utcnow

__all__ = ["HEARTBEAT_S", "STALE_S", "claim", "heartbeat", "last_sign_of_life"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
STALE_S = 120.0  # eight missed heartbeats: the worker is gone


def last_sign_of_life(job: RetrainJob) -> datetime | None:
    return job.heartbeat_at or job.started_at


def claim(session: Session, job_id: uuid.UUID) -> bool:
    """Queued -> running for this worker, or take over a running job whose heartbeat went stale. Commits."""
    now = utcnow()
    table = RetrainJob.__table__  # type: ignore[attr-defined]
    stale = now - timedelta(seconds=STALE_S)
    result = session.execute(
        update(table).where(table.c.id == job_id).where(or_(
            table.c.status == RetrainStatus.queued,
            and_(table.c.status == RetrainStatus.running,
                 func.coalesce(table.c.heartbeat_at, table.c.started_at) < stale)))
        .values(status=RetrainStatus.running, started_at=now, heartbeat_at=now))
    session.commit()
    return bool(result.rowcount)


@contextmanager
def heartbeat(session: Session, job_id: uuid.UUID, every_s: float | None = None) -> Iterator[None]:
    """Refresh the job's ``heartbeat_at`` from a background thread (its own connection) until the block ends."""
    engine: Any = session.get_bind()
    stop = threading.Event()
    interval = HEARTBEAT_S if every_s is None else every_s

    def beat() -> None:
        table = RetrainJob.__table__  # type: ignore[attr-defined]
        while not stop.wait(interval):
            try:
                with engine.begin() as conn:
                    conn.execute(update(table).where(table.c.id == job_id)
                                 .where(table.c.status == RetrainStatus.running)
                                 .values(heartbeat_at=utcnow()))
            except Exception:  # a missed beat is not fatal; STALE_S allows for several
                log.warning("retrain job %s: heartbeat failed", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
