"""The whole loop with real Celery worker processes, the simulated vendor over HTTP, faults on."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.domain.outbox import PIPELINE_QUEUES
from tests.support import worker
from tests.workers.loop import assert_books_balance, loop_backend, start_campaign_of, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAULTS = ("--error-rate=0.15", "--rate-limit-rate=0.1", "--duplicate-rate=0.1", "--malformed-rate=0.1")


@pytest.mark.parametrize("backend", ["postgres+redis", "embedded"])
def test_every_judgment_is_stored_exactly_once_and_every_item_reconciled(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n_items = 60
    with loop_backend(backend, tmp_path, monkeypatch, *FAULTS) as loop:
        loop.stack.enter_context(_stopping(worker(loop.env, tmp_path / "worker.log", queues=PIPELINE_QUEUES)))
        loop.stack.enter_context(_stopping(worker(loop.env, tmp_path / "trainer.log", queues="training",
                                                  concurrency=1, beat=False, name="trainer")))
        campaign_id = start_campaign_of(loop, n_items, raters=3)
        wait_finished(loop, campaign_id)
        ledger = assert_books_balance(loop, campaign_id, n_items)
        counters = ledger["counters"]
        assert counters.get("duplicates_sent", 0) > 0 and counters.get("malformed_sent", 0) > 0


class _stopping:
    def __init__(self, process) -> None:  # type: ignore[no-untyped-def]
        self.process = process

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.process

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
