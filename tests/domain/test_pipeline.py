"""Domain use cases in-process against the real simulated vendor over HTTP (no Celery)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from connectors.base import MalformedRecord, ResultPage, VendorJudgment
from connectors.errors import VendorUnavailable
from service.domain import batches as batch_use_cases
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.ingest import store_page, sync_batch
from service.domain.reconcile import reconcile_campaign
from service.errors import InvalidInput, InvalidTransition
from service.settings import Settings, VendorSettings
from service.storage.db import session_scope
from service.storage.models import (
    Batch,
    BatchItem,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Judgment,
    JudgmentKind,
    OutboxMessage,
    QuarantinedPayload,
    SubmissionAttempt,
)
from service.storage.types import utcnow
from tests.support import API_KEY, Vendor, pairwise_items

pytestmark = pytest.mark.integration


def _campaign(settings: Settings, n: int = 20, **spec: object) -> uuid.UUID:
    with session_scope(settings.resolved_database_url) as s:
        campaign = create_campaign(s, CampaignSpec(name=f"c-{uuid.uuid4().hex[:6]}", kind=JudgmentKind.pairwise,
                                                   raters_per_item=3, **spec))  # type: ignore[arg-type]
        add_items(s, campaign, pairwise_items(n))
        start_campaign(s, settings, campaign)
        s.commit()
        return campaign.id


def _batches(settings: Settings, campaign_id: uuid.UUID) -> list[Batch]:
    with session_scope(settings.resolved_database_url) as s:
        return list(s.exec(select(Batch).where(Batch.campaign_id == campaign_id).order_by(Batch.created_at)))


def _run_to_completion(settings: Settings, campaign_id: uuid.UUID, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_batches = [b for b in _batches(settings, campaign_id) if b.status is not BatchStatus.completed]
        if not open_batches:
            return
        for b in open_batches:
            with session_scope(settings.resolved_database_url) as s:
                if b.status is BatchStatus.pending:
                    batch_use_cases.push_batch(s, settings, b.id)
                else:
                    if sync_batch(s, settings, b.id, force=True).outcome == "completed":
                        reconcile_campaign(s, settings, campaign_id)
        time.sleep(0.2)
    raise AssertionError("campaign did not complete")


def test_start_plans_batches_with_outbox_messages(settings: Settings) -> None:
    campaign_id = _campaign(settings, n=25)
    batches = _batches(settings, campaign_id)
    assert [b.n_items for b in batches] == [10, 10, 5]
    assert len({b.idempotency_key for b in batches}) == 3
    with session_scope(settings.resolved_database_url) as s:
        pushes = s.exec(select(OutboxMessage).where(OutboxMessage.task == "workers.vendor.push_batch")).all()
    assert sorted(m.args[0] for m in pushes) == sorted(str(b.id) for b in batches)


def test_full_pass_stores_every_judgment_once_despite_duplicates(settings: Settings, vendor: Vendor) -> None:
    vendor.set_faults(duplicate_rate=0.3, malformed_rate=0.2)
    campaign_id = _campaign(settings, n=20)
    _run_to_completion(settings, campaign_id)
    with session_scope(settings.resolved_database_url) as s:
        stored = s.exec(select(Judgment.vendor_judgment_id).where(Judgment.campaign_id == campaign_id)).all()
        consensus = s.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign_id)
                           .where(ConsensusLabel.method == "ds")).all()
        quarantined = s.exec(select(QuarantinedPayload)).all()
        campaign = s.get(Campaign, campaign_id)
    assert len(stored) == len(set(stored)) >= 60
    assert len(consensus) == 20
    assert quarantined and all(q.reason and q.raw for q in quarantined)
    assert campaign is not None and campaign.status is CampaignStatus.completed


def test_reconciliations_go_out_on_their_own_queue(settings: Settings, vendor: Vendor) -> None:
    """A completed batch's reconciliation must not wait behind the polls a beat tick fans out on ``default``."""
    from workers.app import app

    campaign_id = _campaign(settings, n=20)
    _run_to_completion(settings, campaign_id)
    with session_scope(settings.resolved_database_url) as s:
        queues = {m.task: m.queue for m in s.exec(select(OutboxMessage))}
    assert queues["workers.reconcile.reconcile_campaign"] == "reconcile"
    assert queues["workers.vendor.push_batch"] == "default"
    assert app.amqp.router.route({}, "workers.reconcile.reconcile_campaign")["queue"].name == "reconcile"


def test_push_is_skipped_once_submitted(settings: Settings, vendor: Vendor) -> None:
    campaign_id = _campaign(settings, n=5)
    batch = _batches(settings, campaign_id)[0]
    with session_scope(settings.resolved_database_url) as s:
        assert batch_use_cases.push_batch(s, settings, batch.id) == "submitted"
        assert batch_use_cases.push_batch(s, settings, batch.id) == "skipped"
    assert vendor.ledger()["creations_per_external_id"][batch.idempotency_key] == 1


def test_retryable_error_is_raised_after_recording_the_attempt(settings: Settings, vendor: Vendor) -> None:
    campaign_id = _campaign(settings, n=5)
    batch = _batches(settings, campaign_id)[0]
    vendor.set_faults(error_rate=1.0)
    with session_scope(settings.resolved_database_url) as s, pytest.raises(VendorUnavailable):
        batch_use_cases.push_batch(s, settings, batch.id, task_id="t-1")
    with session_scope(settings.resolved_database_url) as s:
        attempt = s.exec(select(SubmissionAttempt).where(SubmissionAttempt.batch_id == batch.id)).one()
        assert (attempt.outcome, attempt.error_class, attempt.task_id) == ("retryable", "VendorUnavailable", "t-1")
        assert s.get(Batch, batch.id).status is BatchStatus.submitting  # type: ignore[union-attr]
    vendor.set_faults(error_rate=0.0)
    with session_scope(settings.resolved_database_url) as s:
        assert batch_use_cases.push_batch(s, settings, batch.id) in ("submitted", "replayed")
    assert vendor.ledger()["creations_per_external_id"][batch.idempotency_key] == 1


def test_non_retryable_error_fails_the_batch(settings: Settings, vendor: Vendor) -> None:
    bad_key = settings.model_copy(update={"simulated": VendorSettings(base_url=vendor.url, api_key="wrong")})
    campaign_id = _campaign(bad_key, n=5)
    batch = _batches(bad_key, campaign_id)[0]
    with session_scope(bad_key.resolved_database_url) as s:
        assert batch_use_cases.push_batch(s, bad_key, batch.id) == "failed"
        failed = s.get(Batch, batch.id)
        assert failed is not None and failed.status is BatchStatus.failed and "API key" in (failed.error or "")
        assert API_KEY not in (failed.error or "") and "wrong" not in (failed.error or "")


def test_rate_limit_on_poll_is_scheduled_from_the_database(settings: Settings, vendor: Vendor) -> None:
    campaign_id = _campaign(settings, n=5)
    batch = _batches(settings, campaign_id)[0]
    with session_scope(settings.resolved_database_url) as s:
        batch_use_cases.push_batch(s, settings, batch.id)
    vendor.set_faults(rate_limit_rate=1.0, retry_after_s=30)
    with session_scope(settings.resolved_database_url) as s:
        assert sync_batch(s, settings, batch.id, force=True).outcome == "rate_limited"
        waiting = s.get(Batch, batch.id)
        assert waiting is not None and waiting.next_poll_at is not None
        assert waiting.next_poll_at - utcnow() > timedelta(seconds=25)
        assert sync_batch(s, settings, batch.id).outcome == "waiting"  # the beat poll respects it


def test_records_that_do_not_fit_the_item_are_quarantined(settings: Settings, vendor: Vendor) -> None:
    campaign_id = _campaign(settings, n=2)
    batch = _batches(settings, campaign_id)[0]
    with session_scope(settings.resolved_database_url) as s:
        campaign = s.get(Campaign, campaign_id)
        item_id = str(s.exec(select(BatchItem.item_id).where(BatchItem.batch_id == batch.id)).first())
        now = utcnow()
        page = ResultPage(judgments=(
            VendorJudgment("j1", item_id, "w1", "A", now), VendorJudgment("j1", item_id, "w1", "A", now),
            VendorJudgment("j2", item_id, "w2", "C>A>B", now), VendorJudgment("j3", "not-ours", "w3", "B", now),
        ), malformed=(MalformedRecord(raw="{", reason="truncated"),), cursor="4", has_more=False)
        result = store_page(s, s.get(Batch, batch.id), campaign, page)  # type: ignore[arg-type]
        s.commit()
        reasons = sorted(q.reason for q in s.exec(select(QuarantinedPayload)))
    assert (result.stored, result.duplicates, result.quarantined) == (1, 1, 3)
    assert any("not a valid pairwise answer" in r for r in reasons)
    assert any("is not an item of batch" in r for r in reasons)
    assert "truncated" in reasons


def test_state_machine_refuses_illegal_transitions() -> None:
    batch = Batch(campaign_id=uuid.uuid4(), vendor="simulated", raters_per_item=1, n_items=1, idempotency_key="k",
                  status=BatchStatus.completed)
    with pytest.raises(InvalidTransition, match="completed to submitting"):
        batch_use_cases.transition(batch, BatchStatus.submitting)


@pytest.mark.parametrize(("records", "message"), [
    ([], "no items"),
    ([{"prompt": "", "responses": ["a", "b"]}], "'prompt' must be a non-empty string"),
    ([{"prompt": "p", "responses": ["a"]}], "'responses' must list"),
    ([{"prompt": "p", "responses": ["a", "b", "c"]}], "exactly 2 responses"),
    ([{"prompt": "p", "responses": ["a", "b"], "gold": "C"}], "not a valid pairwise label"),
    ([{"id": 1, "prompt": "p", "responses": ["a", "b"]}, {"id": 1, "prompt": "q", "responses": ["a", "b"]}],
     "duplicate item ids"),
])
def test_bad_uploads_say_what_to_fix_and_store_nothing(settings: Settings, records: list, message: str) -> None:
    with session_scope(settings.resolved_database_url) as s:
        campaign = create_campaign(s, CampaignSpec(name="bad", kind=JudgmentKind.pairwise))
        with pytest.raises(InvalidInput, match=message):
            add_items(s, campaign, records)


def test_budget_below_first_pass_is_refused(settings: Settings) -> None:
    with session_scope(settings.resolved_database_url) as s:
        campaign = create_campaign(s, CampaignSpec(name="cheap", kind=JudgmentKind.pairwise, raters_per_item=5,
                                                   budget_usd=1.0))
        add_items(s, campaign, pairwise_items(10))
        with pytest.raises(InvalidInput, match="budget 1.00 USD is below the first pass's cost 5.00 USD"):
            start_campaign(s, settings, campaign)
