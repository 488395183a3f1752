"""Secrets never reach logs, error messages or stored rows: a full run's logs are grepped for them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from service.domain.outbox import PIPELINE_QUEUES
from service.storage.db import get_engine
from tests.support import API_KEY, worker
from tests.workers.loop import loop_backend, start_campaign_of, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_vendor_key_is_in_no_log_and_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with loop_backend("embedded", tmp_path, monkeypatch, "--error-rate=0.2", "--rate-limit-rate=0.1") as loop:
        w = worker(loop.env, tmp_path / "worker.log", queues=PIPELINE_QUEUES)
        t = worker(loop.env, tmp_path / "trainer.log", queues="training", concurrency=1, beat=False, name="t")
        loop.stack.callback(w.stop)
        loop.stack.callback(t.stop)
        campaign_id = start_campaign_of(loop, 20, raters=3)
        wait_finished(loop, campaign_id)
        # and a batch that fails on auth: its error is stored and logged, the key is not
        monkeypatch.setenv("CROWDBRIDGE_SIMULATED__API_KEY", "sk-wrong-key-0000000000")
        from service.domain.batches import push_batch
        from service.domain.campaigns import CampaignSpec, add_items, create_campaign, plan_batches
        from service.settings import get_settings
        from service.storage.db import session_scope
        from service.storage.models import JudgmentKind
        from tests.support import pairwise_items

        get_settings.cache_clear()
        settings = get_settings()
        with session_scope(loop.url) as s:
            campaign = create_campaign(s, CampaignSpec(name="bad-key", kind=JudgmentKind.pairwise))
            add_items(s, campaign, pairwise_items(3))
            from sqlmodel import select

            from service.storage.models import Item

            ids = [i.id for i in s.exec(select(Item).where(Item.campaign_id == campaign.id))]
            batch = plan_batches(s, settings, campaign, ids, raters_per_item=1)[0]
            s.commit()
            assert push_batch(s, settings, batch.id) == "failed"
        logging.getLogger("crowdbridge.test").error("settings at failure: %r", settings)
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.rglob("*.log")}
    logs["captured"] = caplog.text
    with get_engine(loop.url).connect() as conn:
        rows = conn.execute(text("SELECT error FROM batch UNION ALL SELECT error FROM submissionattempt")).all()
    logs["stored errors"] = "\n".join(str(r[0]) for r in rows)
    assert "API key" in logs["stored errors"]  # the failure is explained...
    for name, content in logs.items():
        for secret in (API_KEY, "sk-wrong-key-0000000000"):
            assert secret not in content, f"{secret[:8]}... leaked into {name}"  # ...without the key
