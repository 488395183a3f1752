"""The connector contract, run through the real domain functions on a SQLite database.

submit (a 5xx after the vendor did the work) -> submit again (replayed, no duplicate at the vendor)
-> a crashed worker's retry (replayed) -> 429 with Retry-After (the wait is scheduled, then honoured)
-> poll until done, with a duplicate delivery and a malformed record injected by the vendor
-> every rater's answer stored once; the duplicate ignored; the malformed one quarantined with a reason
-> the whole result set delivered again (all ignored) -> cancel twice.

A :class:`Harness` is one vendor behind its fake (or a real server behind a fault-injecting proxy).
Steps a vendor cannot have (no wire: ``file``/``model``) are switched off by its flags.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from connectors.base import BatchState, JudgmentKind, VendorBatchRef
from connectors.errors import VendorUnavailable
from service.domain.batches import load_batch, push_batch
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.ingest import store_page, sync_batch
from service.domain.vendors import connector_for
from service.settings import Settings, VendorSettings
from service.storage.db import get_engine, migrate, session_scope
from service.storage.models import BatchStatus, Campaign, Judgment, QuarantinedPayload
from service.storage.types import utcnow

_TEMPLATE: dict[str, Path] = {}


@dataclass
class Harness:
    vendor: str
    section: dict[str, Any]  # VendorSettings fields for this vendor
    fake: Any = None  # .set_faults(**), .ledger(); None when there is no wire
    per_rater: bool = True
    kind: JudgmentKind = JudgmentKind.pairwise
    raters: int = 3
    items: int = 4
    wire: bool = True  # 5xx/429 steps apply
    vendor_faults: bool = True  # the vendor can be made to send a duplicate and a malformed record
    inject: Callable[[], None] | None = None  # for vendors without /_fake: make a duplicate + malformed appear
    creations: Callable[[dict[str, Any]], dict[str, int]] | None = None  # ledger -> {handle: times created}
    timeout_s: float = 40.0
    extra: dict[str, Any] = field(default_factory=dict)


def database(tmp_path: Path) -> str:
    """A migrated SQLite database (migrated once per session, copied per test)."""
    if "db" not in _TEMPLATE:
        template = Path(str(tmp_path.parent.parent)) / f"cb-template-{uuid.uuid4().hex[:6]}.db"
        migrate(f"sqlite:///{template}")
        get_engine.cache_clear()
        _TEMPLATE["db"] = template
    target = tmp_path / "crowdbridge.db"
    shutil.copy(_TEMPLATE["db"], target)
    return f"sqlite:///{target}"


def items(n: int, kind: JudgmentKind) -> list[dict[str, Any]]:
    k = 2 if kind in (JudgmentKind.pairwise, JudgmentKind.rating, JudgmentKind.binary) else 3
    if kind in (JudgmentKind.rating, JudgmentKind.binary):
        k = 1
    return [{"id": f"item-{i}", "prompt": f"Question {i}: which answer is better?",
             "responses": [{"model_id": f"m{r}", "text": f"answer {r} to question {i}"} for r in range(k)]}
            for i in range(n)]


def settings_for(h: Harness, tmp_path: Path, url: str) -> Settings:
    return Settings(env="test", data_dir=tmp_path, database_url=url, poll_interval_s=0.2, batch_size=50,
                    **{h.vendor: VendorSettings(**h.section)})


def setup_batch(h: Harness, tmp_path: Path) -> tuple[Settings, str, uuid.UUID]:
    url = database(tmp_path)
    settings = settings_for(h, tmp_path, url)
    with session_scope(url) as session:
        campaign = create_campaign(session, CampaignSpec(name=f"contract-{h.vendor}-{uuid.uuid4().hex[:6]}",
                                                         kind=h.kind, raters_per_item=h.raters, vendor=h.vendor))
        add_items(session, campaign, items(h.items, h.kind))
        [batch] = start_campaign(session, settings, campaign)
        session.commit()
        return settings, url, batch.id


def run_contract(h: Harness, tmp_path: Path) -> dict[str, Any]:
    settings, url, batch_id = setup_batch(h, tmp_path)
    report: dict[str, Any] = {}
    with session_scope(url) as s:
        # 1. submit: the vendor does the work, then answers 5xx; 2. submit again: replayed, not re-created
        if h.wire:
            h.fake.set_faults(fail_after_write=1)
            with pytest.raises(VendorUnavailable):
                push_batch(s, settings, batch_id)
            # "replayed" when the failed write was the batch's own creation; either way nothing twice
            assert push_batch(s, settings, batch_id) in ("replayed", "submitted")
        else:
            assert push_batch(s, settings, batch_id) == "submitted"
        first = load_batch(s, batch_id)
        assert first.status is BatchStatus.submitted and first.vendor_batch_id
        vendor_batch_id = first.vendor_batch_id
        # 3. a worker killed after the vendor accepted but before we recorded it: the retry is a replay
        first.status, first.vendor_batch_id = BatchStatus.submitting, None
        s.add(first)
        s.commit()
        assert push_batch(s, settings, batch_id) == "replayed"
        assert load_batch(s, batch_id).vendor_batch_id == vendor_batch_id
        if h.creations is not None:
            created = h.creations(h.fake.ledger())
            assert created and all(n == 1 for n in created.values()), created
            report["creations"] = created

        # 4. 429 with Retry-After: the wait is written to next_poll_at and honoured
        if h.wire:
            h.fake.set_faults(rate_limit=1, retry_after=1)
            assert sync_batch(s, settings, batch_id, force=True).outcome == "rate_limited"
            waited_until = load_batch(s, batch_id).next_poll_at
            assert waited_until is not None and waited_until >= utcnow() + timedelta(seconds=0.7)
            assert sync_batch(s, settings, batch_id).outcome == "waiting"
        if h.vendor_faults:
            if h.inject is not None:
                h.inject()
            else:
                h.fake.set_faults(duplicate=1, malformed=1)

        # 5. poll until done
        deadline = time.monotonic() + h.timeout_s
        stored = duplicates = quarantined = 0
        outcome = ""
        while time.monotonic() < deadline:
            result = sync_batch(s, settings, batch_id)
            stored += result.store.stored
            duplicates += result.store.duplicates
            quarantined += result.store.quarantined
            outcome = result.outcome
            if outcome == "completed":
                break
            time.sleep(0.2)
        assert outcome == "completed", f"{h.vendor}: batch never completed (last outcome {outcome})"

        # 6. every rater's answer stored once
        batch = load_batch(s, batch_id)
        rows = s.exec(select(Judgment).where(Judgment.batch_id == batch_id)).all()
        expected = h.items * (h.raters if h.per_rater else 1)
        assert len(rows) == expected == stored, (len(rows), expected, stored)
        assert batch.judgments_done == expected
        assert len({(r.item_id, r.rater_id) for r in rows}) == expected
        assert all(r.raw and r.submitted_at for r in rows)
        if h.per_rater:
            assert len({r.rater_id for r in rows}) >= h.raters
        else:
            assert {r.rater_id for r in rows} == {rows[0].rater_id}
        campaign = s.get(Campaign, batch.campaign_id)
        assert campaign is not None

        # 7. the duplicate delivery was ignored, the malformed record quarantined with a reason
        bad = s.exec(select(QuarantinedPayload).where(QuarantinedPayload.batch_id == batch_id)).all()
        if h.vendor_faults:
            assert duplicates >= 1, "the vendor's duplicate delivery never arrived"
            assert quarantined >= 1 and len(bad) >= 1
            assert all(b.reason and b.raw for b in bad)
        report.update(stored=stored, duplicates=duplicates, quarantined=len(bad),
                      reasons=sorted({b.reason for b in bad}))

        # 8. the whole result set delivered again: nothing new is stored
        connector = connector_for(settings, h.vendor)
        ref = VendorBatchRef(vendor=h.vendor, vendor_batch_id=vendor_batch_id)
        cursor, again = None, 0
        for _ in range(50):
            page = connector.fetch_judgments(ref, cursor)
            res = store_page(s, batch, campaign, page)
            s.commit()
            assert res.stored == 0
            again += res.duplicates
            cursor = page.cursor
            if not page.has_more:
                break
        assert again >= 1
        assert len(s.exec(select(Judgment).where(Judgment.batch_id == batch_id)).all()) == expected

        # 9. cancel twice: not an error, and the finished batch stays finished
        connector.cancel(ref)
        connector.cancel(ref)
        assert connector.poll(ref).state in (BatchState.completed, BatchState.cancelled)
    return report


def run_cancel_before_done(h: Harness, tmp_path: Path) -> None:
    """Submit, cancel twice before the crowd answers: the vendor reports the batch cancelled."""
    settings, url, batch_id = setup_batch(h, tmp_path)
    with session_scope(url) as s:
        assert push_batch(s, settings, batch_id) == "submitted"
        ref = VendorBatchRef(vendor=h.vendor, vendor_batch_id=load_batch(s, batch_id).vendor_batch_id or "")
    connector = connector_for(settings, h.vendor)
    connector.cancel(ref)
    connector.cancel(ref)
    assert connector.poll(ref).state is BatchState.cancelled
