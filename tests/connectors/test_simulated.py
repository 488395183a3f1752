"""The simulated connector against the real simulated vendor over HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.base import BatchRequest, BatchState, JudgmentKind, MalformedRecord, TaskSpec, VendorJudgment
from connectors.errors import RateLimited, VendorAuthError, VendorUnavailable
from connectors.simulated.client import SimulatedConnector, parse_judgment
from tests.support import API_KEY, running_vendor

pytestmark = pytest.mark.integration


def _request(n: int = 6, raters: int = 3, key: str = "key-1") -> BatchRequest:
    tasks = tuple(TaskSpec(item_id=f"t{i}", prompt=f"p{i}", responses=(f"a{i}", f"b{i}")) for i in range(n))
    return BatchRequest(batch_id="b1", idempotency_key=key, campaign_id="c1", kind=JudgmentKind.pairwise,
                        instructions="", raters_per_item=raters, tasks=tasks, reward_per_judgment=0.1)


def _connector(url: str, key: str = API_KEY, **options: object) -> SimulatedConnector:
    return SimulatedConnector.from_options({"base_url": url, "api_key": key, **options})


def _fetch_all(conn: SimulatedConnector, ref, page_deadline: float = 20.0):  # type: ignore[no-untyped-def]
    cursor, judgments, malformed = None, [], []
    deadline = time.monotonic() + page_deadline
    while time.monotonic() < deadline:
        status = conn.poll(ref)
        page = conn.fetch_judgments(ref, cursor)
        judgments += page.judgments
        malformed += page.malformed
        cursor = page.cursor
        if status.state is BatchState.completed and not page.has_more:
            return judgments, malformed, cursor
        time.sleep(0.2)
    raise AssertionError("batch never completed")


def test_submit_is_idempotent_and_results_page_with_a_cursor(tmp_path: Path) -> None:
    with running_vendor(tmp_path) as vendor:
        conn = _connector(vendor.url, page_size=4)
        first = conn.submit_batch(_request())
        again = conn.submit_batch(_request())
        assert first.created and not again.created
        assert again.vendor_batch_id == first.vendor_batch_id
        judgments, malformed, cursor = _fetch_all(conn, first)
        assert len(judgments) == 18 and not malformed
        assert len({j.vendor_judgment_id for j in judgments}) == 18
        assert {j.item_id for j in judgments} == {f"t{i}" for i in range(6)}
        assert all(j.label in {"A", "B", "tie"} and j.cost == pytest.approx(0.1) for j in judgments)
        assert all(j.started_at is not None and j.started_at <= j.submitted_at for j in judgments)
        # re-reading past the end returns nothing new; re-reading from the start returns the same records
        assert conn.fetch_judgments(first, cursor).judgments == ()
        assert conn.fetch_judgments(first, None).judgments == tuple(judgments[:4])
        ledger = vendor.ledger()
        assert ledger["counters"]["batches_created"] == 1
        assert ledger["counters"]["submit_requests"] == 2


def test_duplicates_and_malformed_records_come_back_as_such(tmp_path: Path) -> None:
    with running_vendor(tmp_path, "--duplicate-rate=0.3", "--malformed-rate=0.3") as vendor:
        conn = _connector(vendor.url)
        ref = conn.submit_batch(_request(n=20))
        judgments, malformed, _ = _fetch_all(conn, ref)
        counters = vendor.ledger()["counters"]
        assert len(judgments) == 60 + counters.get("duplicates_sent", 0)
        assert len({j.vendor_judgment_id for j in judgments}) == 60
        assert len(malformed) == counters.get("malformed_sent", 0) > 0
        assert all(m.reason for m in malformed)


def test_errors_are_mapped_at_the_edge(tmp_path: Path) -> None:
    with running_vendor(tmp_path) as vendor:
        with pytest.raises(VendorAuthError):
            _connector(vendor.url, key="wrong").submit_batch(_request())
        vendor.set_faults(rate_limit_rate=1.0, retry_after_s=7)
        with pytest.raises(RateLimited) as limited:
            _connector(vendor.url).submit_batch(_request())
        assert limited.value.retry_after == pytest.approx(7)
        assert limited.value.retryable
        vendor.set_faults(rate_limit_rate=0.0, error_rate=1.0)
        with pytest.raises(VendorUnavailable):
            _connector(vendor.url).submit_batch(_request(key="key-2"))
        vendor.set_faults(error_rate=0.0, slow_rate=1.0, slow_s=2.0)
        with pytest.raises(VendorUnavailable, match="timed out"):
            _connector(vendor.url, timeout_s=0.5).poll(_connector(vendor.url).submit_batch(_request(key="k3")))
    with pytest.raises(VendorUnavailable):  # nobody listening any more
        _connector(vendor.url).submit_batch(_request())


def test_a_5xx_after_the_work_was_done_is_replayed_not_duplicated(tmp_path: Path) -> None:
    with running_vendor(tmp_path) as vendor:
        conn = _connector(vendor.url)
        vendor.set_faults(error_rate=1.0)
        created_anyway = 0
        for _ in range(12):  # half of the vendor's 503s come after it created the batch
            with pytest.raises(VendorUnavailable):
                conn.submit_batch(_request(key="same-key"))
        vendor.set_faults(error_rate=0.0)
        ref = conn.submit_batch(_request(key="same-key"))
        created_anyway = vendor.ledger()["creations_per_external_id"].get("same-key", 0)
        assert created_anyway == 1
        assert ref.created is False  # one of the failed attempts had created it: this is a replay


def test_cancel_is_idempotent(tmp_path: Path) -> None:
    with running_vendor(tmp_path, "--turnaround=30") as vendor:
        conn = _connector(vendor.url)
        ref = conn.submit_batch(_request())
        conn.cancel(ref)
        conn.cancel(ref)
        status = conn.poll(ref)
        assert status.state is BatchState.cancelled
        assert vendor.ledger()["counters"]["batches_cancelled"] == 1


@pytest.mark.parametrize(("record", "reason"), [
    ({"id": "x", "task_id": "t", "worker_id": None, "answer": "A", "submitted_at": 1.0}, "worker_id"),
    ({"id": "x", "task_id": "t", "worker_id": "w", "answer": "purple", "submitted_at": 1.0}, "not a valid label"),
    ({"id": "x", "task_id": "t", "worker_id": "w", "answer": "A", "submitted_at": "yesterday"}, "unix timestamp"),
    ("<html>oops</html>", "not a JSON object"),
    (["A"], "not a JSON object"),
])
def test_parse_judgment_quarantines_with_a_reason(record: object, reason: str) -> None:
    parsed = parse_judgment(record)
    assert isinstance(parsed, MalformedRecord)
    assert reason in parsed.reason


def test_parse_judgment_maps_a_good_record() -> None:
    parsed = parse_judgment({"id": "j1", "task_id": "t1", "worker_id": "w1", "answer": "C>A>B",
                             "started_at": 10.0, "submitted_at": 70.5, "cost_usd": 0.2})
    assert isinstance(parsed, VendorJudgment)
    assert (parsed.rater_id, parsed.label, parsed.cost) == ("w1", "C>A>B", 0.2)
    assert (parsed.submitted_at - parsed.started_at).total_seconds() == pytest.approx(60.5)
