"""Retraining: policy, snapshot lineage, evaluation against the parent, registry, provenance card."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from service.domain.campaigns import get_campaign
from service.domain.registry import get_version, list_versions, promote_version
from service.domain.retrain import build_pairs, maybe_enqueue_retrain, run_retrain_job
from service.errors import InvalidInput, NotFound
from service.settings import Settings
from service.storage.db import session_scope
from service.storage.models import (
    DatasetSnapshot,
    Judgment,
    OutboxMessage,
    RetrainJob,
    RetrainStatus,
    SnapshotJudgment,
)
from tests.domain.test_pipeline import _campaign, _run_to_completion

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def trained(settings: Settings) -> tuple[Settings, uuid.UUID]:
    tiny = settings.model_copy(update={"reward_backbone": "tiny-bert", "retrain_min_new_pairs": 10_000})
    campaign_id = _campaign(tiny, n=40, model_family="rm-test")
    with session_scope(tiny.resolved_database_url) as s:
        from service.storage.models import Item

        items = s.exec(select(Item).where(Item.campaign_id == campaign_id)).all()
        for item in items[:8]:  # the lab knows a few answers
            item.gold = "A"
            s.add(item)
        s.commit()
    _run_to_completion(tiny, campaign_id)
    return tiny, campaign_id


def _job(settings: Settings, campaign_id: uuid.UUID, *, force: bool = False) -> uuid.UUID:
    with session_scope(settings.resolved_database_url) as s:
        job = maybe_enqueue_retrain(s, settings, get_campaign(s, campaign_id), trigger="manual", force=force)
        assert job is not None
        s.commit()
        return job.id


def test_policy_queues_one_job_on_the_training_queue_per_family(trained: tuple[Settings, uuid.UUID]) -> None:
    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        auto = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).all()
        assert len(auto) == 1 and auto[0].trigger == "policy"  # the finished campaign triggered it
        assert maybe_enqueue_retrain(s, settings, get_campaign(s, campaign_id), force=True) is None  # debounced
        message = s.exec(select(OutboxMessage).where(OutboxMessage.task == "workers.training.train_reward_model")).one()
        assert message.queue == "training" and message.args == [str(auto[0].id)]


def test_train_register_compare_and_card(trained: tuple[Settings, uuid.UUID]) -> None:
    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        first_job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        first = run_retrain_job(s, settings, first_job.id)
    assert first.status == "succeeded" and first.model_version == 1
    second = run_retrain_job_by_hand(settings, campaign_id)
    assert second.model_version == 2
    with session_scope(settings.resolved_database_url) as s:
        v1, v2 = list_versions(s, family="rm-test")
        pairs = build_pairs(s, get_campaign(s, campaign_id))
        linked = set(s.exec(select(SnapshotJudgment.judgment_id).where(SnapshotJudgment.snapshot_id == v2.snapshot_id)))
        all_judgments = set(s.exec(select(Judgment.id).where(Judgment.campaign_id == campaign_id)))
        snapshot = s.get(DatasetSnapshot, v2.snapshot_id)
    # every judgment behind a trained pair is linked to the version it trained
    expected = {uuid.UUID(j) for ids in pairs["judgment_ids"] for j in ids}
    assert linked == expected and expected <= all_judgments and len(expected) >= 3 * len(pairs)
    assert snapshot is not None and pd.read_parquet(snapshot.path).shape[0] == snapshot.n_pairs == len(pairs)
    assert v1.promoted != v2.promoted or not v2.promoted  # exactly one serving version
    assert {"heldout_accuracy", "calibration_error", "gold_accuracy"} <= set(v1.metrics)
    assert "parent_heldout_accuracy" in v2.metrics and v2.parent_id == v1.id
    card = json.loads((Path(v2.artifact_path) / "card.json").read_text())
    assert card["data"]["judgments"] == len(expected)
    assert card["data"]["raters"] >= 3 and card["data"]["cost_usd"] == pytest.approx(0.1 * len(expected))
    assert card["data"]["vendors"]["simulated"]["share"] == 1.0 and card["data"]["rater_hours"] > 0
    assert card["agreement"]["krippendorff_alpha_nominal"]["ci_low"] is not None
    assert card["consensus"]["gold_items"] == 8
    html = (Path(v2.artifact_path) / "card.html").read_text()
    assert "Rater-hours" in html and "Krippendorff" in html


def run_retrain_job_by_hand(settings: Settings, campaign_id: uuid.UUID):  # type: ignore[no-untyped-def]
    job_id = _job(settings, campaign_id, force=True)
    with session_scope(settings.resolved_database_url) as s:
        return run_retrain_job(s, settings, job_id)


def test_registry_promote_and_lookups(trained: tuple[Settings, uuid.UUID]) -> None:
    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        run_retrain_job(s, settings, job.id)
    run_retrain_job_by_hand(settings, campaign_id)
    with session_scope(settings.resolved_database_url) as s:
        promote_version(s, "rm-test:1")
        assert [m.promoted for m in list_versions(s, family="rm-test")] == [True, False]
        assert get_version(s, "rm-test:latest").version == 2
        with pytest.raises(NotFound):
            get_version(s, "rm-test:9")
        with pytest.raises(InvalidInput, match="number or 'latest'"):
            get_version(s, "rm-test:newest")
        done = s.exec(select(RetrainJob)).all()
        assert all(j.status is RetrainStatus.succeeded for j in done)


def test_cli_models_list_show_promote(trained: tuple[Settings, uuid.UUID], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        run_retrain_job(s, settings, job.id)
    from service.cli import app
    from service.settings import get_settings

    monkeypatch.setenv("CROWDBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CROWDBRIDGE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["family"], r["version"], r["promoted"]) for r in rows] == [("rm-test", 1, True)]
    shown = runner.invoke(app, ["models", "show", "rm-test:1", "--json"])
    assert json.loads(shown.stdout)["card"]["data"]["judgments"] > 0
    assert runner.invoke(app, ["models", "promote", "rm-test:1"]).exit_code == 0
    out = settings.data_dir / "pairs.jsonl"
    exported = runner.invoke(app, ["export-pairs", str(campaign_id), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    first = json.loads(out.read_text().splitlines()[0])
    assert {"prompt", "chosen", "rejected"} <= set(first)
    get_settings.cache_clear()


def test_sweeper_retrains_on_consensus_written_while_the_last_run_trained(
        trained: tuple[Settings, uuid.UUID]) -> None:
    """A reconciliation that lands while a run trains is debounced; the run read its pairs before it, so the
    sweeper must compare reconciliation time with the run's start, not with the model's creation."""
    from datetime import timedelta

    from service.domain.sweeper import requeue_stuck_work
    from service.storage.models import ConsensusLabel, ModelVersion

    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        run_retrain_job(s, settings, job.id)
    with session_scope(settings.resolved_database_url) as s:
        job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        model = s.exec(select(ModelVersion).where(ModelVersion.family == "rm-test")).one()
        start = job.started_at
        assert start is not None
        # one item's consensus was (re)written during training, after the run had read its pairs
        row = s.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign_id)
                     .where(ConsensusLabel.method == "auto").where(ConsensusLabel.label == "A")).first()
        assert row is not None
        row.computed_at, model.created_at = start + timedelta(seconds=1), start + timedelta(seconds=2)
        late = set(s.exec(select(Judgment.id).where(Judgment.item_id == row.item_id)))
        for link in s.exec(select(SnapshotJudgment).where(SnapshotJudgment.snapshot_id == model.snapshot_id)):
            if link.judgment_id in late:
                s.delete(link)
        s.add_all([row, model])
        s.commit()
        requeue_stuck_work(s, settings)
        jobs = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).all()
    assert len(jobs) == 2 and {j.status for j in jobs} == {RetrainStatus.succeeded, RetrainStatus.queued}


def test_a_second_delivery_of_a_job_being_trained_does_not_train_it_again(
        trained: tuple[Settings, uuid.UUID], monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis hands a message to another worker once a run outlasts the visibility timeout: the job's lease
    (claim + heartbeat) makes that delivery a no-op while the first worker is alive, and lets a dead
    worker's job be taken over."""
    from datetime import timedelta

    from service.domain import training_lease
    from service.domain.sweeper import requeue_stuck_work

    settings, campaign_id = trained
    with session_scope(settings.resolved_database_url) as s:
        job = s.exec(select(RetrainJob).where(RetrainJob.campaign_id == campaign_id)).one()
        assert training_lease.claim(s, job.id)  # a first worker took it and is training
        assert not training_lease.claim(s, job.id)
        for message in s.exec(select(OutboxMessage)):  # its message went out (the relay ran)
            message.published_at = utcnow_minus(0)
            s.add(message)
        # started long ago (beyond the visibility timeout), but its heartbeat is fresh: alive
        s.refresh(job)
        job.started_at = job.started_at - timedelta(hours=2)
        s.add(job)
        s.commit()
        again = run_retrain_job(s, settings, job.id)
        assert again.status == "running" and again.model_version is None
        requeue_stuck_work(s, settings)
        assert _unsent_train_messages(s) == 0  # not taken for dead
        # the heartbeat thread keeps it fresh
        before = s.get(RetrainJob, job.id).heartbeat_at  # type: ignore[union-attr]
        with training_lease.heartbeat(s, job.id, every_s=0.05):
            import time

            time.sleep(0.3)
        s.expire_all()
        assert s.get(RetrainJob, job.id).heartbeat_at > before  # type: ignore[operator,union-attr]
        # the worker dies: its heartbeat goes stale, the sweeper sends the job out again, and it is trained once
        stale = job.heartbeat_at = utcnow_minus(training_lease.STALE_S + 5)
        s.add(job)
        s.commit()
        requeue_stuck_work(s, settings)
        assert _unsent_train_messages(s) == 1
        done = run_retrain_job(s, settings, job.id)
        assert done.status == "succeeded" and done.model_version == 1
        s.refresh(job)
        assert job.heartbeat_at is not None and job.heartbeat_at > stale


def utcnow_minus(seconds: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from service.storage.types import utcnow

    return utcnow() - timedelta(seconds=seconds)


def _unsent_train_messages(s) -> int:  # type: ignore[no-untyped-def]
    return len(s.exec(select(OutboxMessage).where(OutboxMessage.task == "workers.training.train_reward_model")
                      .where(OutboxMessage.published_at == None)).all())  # noqa: E711
