"""SIGKILL the worker in the middle of a push: nothing lost, no batch submitted twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlmodel import select

from service.domain.outbox import PIPELINE_QUEUES
from service.storage.db import session_scope
from service.storage.models import Batch, BatchStatus, SubmissionAttempt
from tests.support import wait_for, worker
from tests.workers.loop import assert_books_balance, loop_backend, start_campaign_of, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _submitting(url: str) -> bool:
    with session_scope(url) as s:
        return s.exec(select(Batch).where(Batch.status == BatchStatus.submitting)).first() is not None


def test_killed_worker_mid_push_loses_nothing_and_pays_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n_items = 50
    # every vendor call takes 3 s, so the kill lands while the vendor is creating the batch;
    # the sweeper treats a push idle for 3 s as stuck
    with loop_backend("postgres+redis", tmp_path, monkeypatch, "--slow-rate=1.0", stuck_after_s=3,
                      visibility_timeout_s=60) as loop:
        first = worker(loop.env, tmp_path / "worker-1.log", queues=PIPELINE_QUEUES)
        trainer = worker(loop.env, tmp_path / "trainer.log", queues="training", concurrency=1, beat=False,
                         name="trainer")
        loop.stack.callback(trainer.stop)
        try:
            campaign_id = start_campaign_of(loop, n_items, raters=3)
            wait_for(lambda: _submitting(loop.url), timeout=60, what="a batch in flight to the vendor",
                     interval=0.05)
            time.sleep(1.0)  # the request has reached the vendor, the response has not come back
        finally:
            first.kill()  # SIGKILL the worker, its pool children and beat
        first.process.wait(timeout=10)
        assert _submitting(loop.url), "the kill should have left a batch mid-submit"
        second = worker(loop.env, tmp_path / "worker-2.log", queues=PIPELINE_QUEUES)
        loop.stack.callback(second.stop)
        wait_finished(loop, campaign_id, timeout=240)
        ledger = assert_books_balance(loop, campaign_id, n_items)
        with session_scope(loop.url) as s:
            attempts = s.exec(select(SubmissionAttempt).where(SubmissionAttempt.action == "submit")).all()
        # the interrupted attempt never finished; the retry was answered with the batch the vendor already had
        assert any(a.finished_at is None for a in attempts)
        assert any(a.outcome == "replayed" for a in attempts)
        assert ledger["counters"]["submit_replays"] >= 1
