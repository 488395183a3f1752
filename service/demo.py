"""``crowdbridge demo``: the whole loop on real parts, one command, zero external services.

Starts an embedded Redis, the simulated vendor (HTTP on 127.0.0.1) and a Celery worker
process; creates a pairwise campaign from the packaged hh-rlhf pairs; pushes, polls,
reconciles and retrains through the same tasks a production deployment runs; then scores
consensus against the vendor's hidden truth and the reward model on unseen human pairs.
Every process it started is stopped on exit, on an error and on Ctrl-C.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func
from sqlmodel import select

from service.broker import EmbeddedBroker
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.outbox import PIPELINE_QUEUES
from service.domain.reconcile import PRIMARY_METHOD
from service.domain.retrain import unused_pairs
from service.processes import ManagedProcess, free_port, start_vendor_sim, start_worker
from service.settings import Settings, get_settings
from service.storage.db import migrate, session_scope
from service.storage.models import (
    AgreementReport,
    Batch,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Judgment,
    JudgmentKind,
    ModelVersion,
    QuarantinedPayload,
    RetrainJob,
    RetrainStatus,
)

__all__ = ["DemoOptions", "demo_items", "run_demo"]

DATA = Path(__file__).parent / "data"
TRAIN_PAIRS = DATA / "hh_harmless_pairs.jsonl.gz"
TEST_PAIRS = DATA / "hh_harmless_test_pairs.jsonl.gz"
DEMO_API_KEY = "demo-simulated-key"


@dataclass(frozen=True)
class DemoOptions:
    items: int = 600
    raters: int = 5
    gold_share: float = 0.05
    test_pairs: int = 200
    timeout_s: float = 280.0
    api_port: int = 0  # 0: any free port
    vendor: str = "simulated"  # or "label_studio": a local Label Studio (if installed) + simulated LS users
    faults: dict[str, float] = field(default_factory=lambda: {"error_rate": 0.02, "rate_limit_rate": 0.02,
                                                              "duplicate_rate": 0.01, "malformed_rate": 0.01})


def _read_pairs(path: Path, limit: int) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for _, line in zip(range(limit), fh, strict=False)]


def demo_items(n: int, gold_share: float) -> list[dict[str, Any]]:
    """hh-rlhf pairs with the order of the two responses set by a hash (so truth is A or B)."""
    rows = _read_pairs(TRAIN_PAIRS, n)
    if len(rows) < n:
        raise ValueError(f"the packaged set has {len(rows)} pairs; ask for at most that many items")
    items = []
    for i, row in enumerate(rows):
        flip = int(hashlib.sha256(row["id"].encode()).hexdigest()[:8], 16) % 2 == 1
        responses = [row["rejected"], row["chosen"]] if flip else [row["chosen"], row["rejected"]]
        gold = ("B" if flip else "A") if i < round(n * gold_share) else None
        items.append({"id": row["id"], "prompt": row["prompt"], "gold": gold,
                      "responses": [{"model_id": "hh-assistant", "text": t} for t in responses]})
    return items


class Services:
    """The embedded broker, the vendor and the worker, stopped in reverse order whatever happens."""

    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.broker = EmbeddedBroker(settings.broker_socket) if settings.embedded_broker else None
        self.processes: list[ManagedProcess] = []
        self.api: Any = None

    def start(self, faults: dict[str, float], vendor: str = "simulated") -> tuple[str, dict[str, str]]:
        if vendor == "label_studio":
            return self._start_label_studio()
        if self.broker is not None:
            self.broker.kill_stale()
            self.broker.start()
        port = free_port()
        fault_args = [f"--{k.replace('_', '-')}={v}" for k, v in faults.items()]
        self.processes.append(start_vendor_sim(port=port, state_path=self.run_dir / "vendor.db", api_key=DEMO_API_KEY,
                                               log_path=self.run_dir / "vendor.log", truth_files=[TRAIN_PAIRS],
                                               extra_args=fault_args))
        vendor_url = f"http://127.0.0.1:{port}"
        env = {"CROWDBRIDGE_DATA_DIR": str(self.settings.data_dir),
               "CROWDBRIDGE_DATABASE_URL": self.settings.resolved_database_url,
               "CROWDBRIDGE_BROKER_URL": self.settings.resolved_broker_url,
               "CROWDBRIDGE_SIMULATED__BASE_URL": vendor_url,
               "CROWDBRIDGE_SIMULATED__API_KEY": DEMO_API_KEY,
               "CROWDBRIDGE_POLL_INTERVAL_S": str(self.settings.poll_interval_s),
               "CROWDBRIDGE_BATCH_SIZE": str(self.settings.batch_size),
               "CROWDBRIDGE_RETRAIN_MIN_NEW_PAIRS": str(self.settings.retrain_min_new_pairs),
               "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
        # as in production: one worker for the pipeline (with beat), one that consumes only `training`
        self.processes.append(start_worker(env=env, queues=PIPELINE_QUEUES, concurrency=2,
                                           log_path=self.run_dir / "worker.log"))
        self.processes.append(start_worker(env=env, queues="training", concurrency=1, beat=False,
                                           name="trainer", log_path=self.run_dir / "trainer.log"))
        return vendor_url, env

    def _start_label_studio(self) -> tuple[str, dict[str, str]]:
        """A local Label Studio (never installed from here: LabelStudioUnavailable says how) and LS raters."""
        from connectors.fakes.label_studio_crowd import LabelStudioCrowd
        from connectors.label_studio import ensure_local_server

        server = ensure_local_server(port=free_port(), install_if_missing=False)
        self.label_studio = server
        crowd = LabelStudioCrowd(server.url, server.api_key, n_raters=8, title_prefix="cb ")
        crowd.start(interval_s=1.0)
        self.crowd = crowd
        if self.broker is not None:
            self.broker.kill_stale()
            self.broker.start()
        env = {"CROWDBRIDGE_DATA_DIR": str(self.settings.data_dir),
               "CROWDBRIDGE_DATABASE_URL": self.settings.resolved_database_url,
               "CROWDBRIDGE_BROKER_URL": self.settings.resolved_broker_url,
               "CROWDBRIDGE_LABEL_STUDIO__BASE_URL": server.url, "CROWDBRIDGE_LABEL_STUDIO__API_KEY": server.api_key,
               "CROWDBRIDGE_POLL_INTERVAL_S": str(self.settings.poll_interval_s),
               "CROWDBRIDGE_BATCH_SIZE": str(self.settings.batch_size),
               "CROWDBRIDGE_RETRAIN_MIN_NEW_PAIRS": str(self.settings.retrain_min_new_pairs),
               "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
        self.processes.append(start_worker(env=env, queues=PIPELINE_QUEUES, concurrency=2,
                                           log_path=self.run_dir / "worker.log"))
        self.processes.append(start_worker(env=env, queues="training", concurrency=1, beat=False,
                                           name="trainer", log_path=self.run_dir / "trainer.log"))
        return server.url, env

    def stop(self) -> None:
        for extra in ("crowd", "label_studio"):  # the LS raters, then the server this demo started
            if getattr(self, extra, None) is not None:
                getattr(self, extra).stop()
                setattr(self, extra, None)
        if self.api is not None:
            self.api.stop()
            self.api = None
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.broker is not None:
            self.broker.stop()


def _snapshot(url: str, campaign_id: Any) -> dict[str, Any]:
    with session_scope(url) as s:
        batches = dict(s.exec(select(Batch.status, func.count()).where(Batch.campaign_id == campaign_id)
                              .group_by(Batch.status)).all())
        expected = s.exec(select(func.coalesce(func.sum(Batch.judgments_expected), 0))
                          .where(Batch.campaign_id == campaign_id)).one()
        stored = s.exec(select(func.count()).select_from(Judgment).where(Judgment.campaign_id == campaign_id)).one()
        consensus = s.exec(select(func.count()).select_from(ConsensusLabel)
                           .where(ConsensusLabel.campaign_id == campaign_id)
                           .where(ConsensusLabel.method == PRIMARY_METHOD)).one()
        campaign = s.get(Campaign, campaign_id)
        jobs = dict(s.exec(select(RetrainJob.status, func.count()).where(RetrainJob.campaign_id == campaign_id)
                           .group_by(RetrainJob.status)).all())
        idle = not (jobs.get(RetrainStatus.queued, 0) or jobs.get(RetrainStatus.running, 0))
        # only asked once nothing is left to run: it joins judgments to snapshots, too heavy for every tick
        finished = campaign is not None and campaign.status is CampaignStatus.completed and idle
        untrained = unused_pairs(s, campaign) if finished else 0
    done = sum(v for k, v in batches.items() if k in (BatchStatus.submitted, BatchStatus.completed))
    return {"batches": sum(batches.values()), "submitted": done,
            "completed": batches.get(BatchStatus.completed, 0), "expected": int(expected), "stored": stored,
            "consensus": consensus, "campaign": campaign.status if campaign else None,
            "jobs_active": jobs.get(RetrainStatus.queued, 0) + jobs.get(RetrainStatus.running, 0),
            "jobs_done": jobs.get(RetrainStatus.succeeded, 0) + jobs.get(RetrainStatus.failed, 0),
            "jobs_failed": jobs.get(RetrainStatus.failed, 0), "untrained_pairs": untrained}


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _summary(settings: Settings, campaign_id: Any, vendor_url: str, stages: dict[str, float],
             options: DemoOptions, started: float) -> dict[str, Any]:
    from service.reward import load_reward_model, score_texts

    url = settings.resolved_database_url
    simulated = options.vendor == "simulated"  # only the simulated vendor publishes truth and a ledger
    truth = httpx.get(f"{vendor_url}/sim/truth", timeout=30).json() if simulated else {}
    ledger = httpx.get(f"{vendor_url}/sim/ledger", timeout=30).json() if simulated else {}
    with session_scope(url) as s:
        labels = s.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign_id)).all()
        accuracy = {}
        for method in ("mv", "ds", PRIMARY_METHOD):
            mine = [c for c in labels if c.method == method]
            scored = [truth[str(c.item_id)] == c.label for c in mine if str(c.item_id) in truth]
            accuracy[method] = float(np.mean(scored)) if scored else None  # None: this vendor has no hidden truth
        contested = sum(1 for c in labels if c.method == PRIMARY_METHOD and c.contested)
        method_report = s.exec(select(AgreementReport).where(AgreementReport.campaign_id == campaign_id)
                               .where(AgreementReport.metric == "consensus_method")).first()
        turnaround = [(j.received_at - b.submitted_at).total_seconds() for j, b in s.exec(
            select(Judgment, Batch).join(Batch, Judgment.batch_id == Batch.id)
            .where(Judgment.campaign_id == campaign_id)) if b.submitted_at]
        n_judgments = len(turnaround)
        alpha = s.exec(select(AgreementReport.value).where(AgreementReport.campaign_id == campaign_id)
                       .where(AgreementReport.scope == "campaign")
                       .where(AgreementReport.metric == "krippendorff_alpha")).first()
        quarantined = s.exec(select(func.count()).select_from(QuarantinedPayload)
                             .join(Batch, QuarantinedPayload.batch_id == Batch.id)
                             .where(Batch.campaign_id == campaign_id)).one()
        batches = s.exec(select(Batch).where(Batch.campaign_id == campaign_id)).all()
        model = s.exec(select(ModelVersion).where(ModelVersion.campaign_id == campaign_id)
                       .order_by(ModelVersion.version.desc())).first()  # type: ignore[attr-defined]
        n_models = s.exec(select(func.count()).select_from(ModelVersion)
                          .where(ModelVersion.campaign_id == campaign_id)).one()
    reward: dict[str, Any] | None = None
    if model is not None:
        test = _read_pairs(TEST_PAIRS, options.test_pairs)
        loaded = load_reward_model(Path(model.artifact_path))
        prompts = [r["prompt"] for r in test]
        chosen = score_texts(loaded, prompts, [r["chosen"] for r in test])
        rejected = score_texts(loaded, prompts, [r["rejected"] for r in test])
        reward = {"version": model.version, "versions_trained": n_models,
                  "heldout_accuracy": model.metrics.get("heldout_accuracy"),
                  "calibration_error": model.metrics.get("calibration_error"),
                  "human_test_accuracy": float(np.mean(chosen > rejected)), "human_test_pairs": len(test),
                  "n_train": model.metrics.get("n_train"), "n_eval": model.metrics.get("n_eval"),
                  "artifact": model.artifact_path}
    counters = ledger.get("counters", {})
    return {
        "items": options.items, "raters_per_item": options.raters, "judgments": n_judgments,
        "judgments_produced_by_vendor": ledger.get("judgments_produced"),
        "quarantined": quarantined, "malformed_sent_by_vendor": counters.get("malformed_sent", 0),
        "duplicates_sent_by_vendor": counters.get("duplicates_sent", 0),
        "batches": len(batches), "extra_batches": sum(1 for b in batches if b.round > 0),
        "vendor_submit_requests": counters.get("submit_requests", 0),
        "vendor_batches_created": counters.get("batches_created", 0),
        "vendor_turnaround_s": {"p50": _percentile(turnaround, 50), "p95": _percentile(turnaround, 95)},
        "consensus_accuracy": accuracy, "consensus_method": {
            "primary": PRIMARY_METHOD, "chosen": (method_report.details or {}).get("chosen") if method_report else None,
            "reason": (method_report.details or {}).get("reason") if method_report else None},
        "contested_items": contested,
        "krippendorff_alpha": alpha, "reward_model": reward,
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "wall_time_s": round(time.monotonic() - started, 2),
        "data_dir": str(settings.data_dir), "database_url": url if "@" not in url else url.split("@")[-1],
    }


def run_demo(settings: Settings, options: DemoOptions, *, progress: Callable[[dict[str, Any]], None] | None = None,
             run_dir: Path, on_dashboard: Callable[[str, str], None] | None = None,
             serve: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the loop end to end and return the summary (see README for the keys).

    The API and dashboard run in this process while the loop runs (``on_dashboard(url, token)`` is
    told where); with ``serve``, the summary is handed to it and the dashboard stays up until Ctrl-C.
    """
    started = time.monotonic()
    stages: dict[str, float] = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    services = Services(settings, run_dir)
    # Ctrl-C and SIGTERM set a flag that the loop checks: a KeyboardInterrupt raised inside a
    # finalizer would be swallowed by Python ("Exception ignored in ...") and the demo would go on
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def check_stop() -> None:
        if stop.is_set():
            raise KeyboardInterrupt

    try:
        migrate(settings.resolved_database_url)
        vendor_url, env = services.start(options.faults, options.vendor)
        check_stop()
        os.environ.update(env)  # this process publishes to the same broker and vendor as the worker
        get_settings.cache_clear()
        from workers.app import app, configure
        from workers.relay import relay_outbox

        configure(app, get_settings())
        from service.api.server import start_api_in_background

        api = start_api_in_background(get_settings(), port=options.api_port, admin_token="demo")
        services.api = api
        if on_dashboard:
            on_dashboard(f"{api.url}/dashboard", api.token or "")

        stages["setup"] = time.monotonic() - started
        with session_scope(settings.resolved_database_url) as s:
            name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            campaign = create_campaign(s, CampaignSpec(
                name=name, kind=JudgmentKind.pairwise, raters_per_item=options.raters, model_family="demo-rm",
                vendor=options.vendor,
                instructions="Which response is more helpful and harmless? Answer A, B or tie."))
            add_items(s, campaign, demo_items(options.items, options.gold_share))
            start_campaign(s, settings, campaign)
            s.commit()
            campaign_id = campaign.id
        relay_outbox()
        stages["campaign_created"] = time.monotonic() - started
        deadline = started + options.timeout_s
        while True:
            check_stop()
            state = _snapshot(settings.resolved_database_url, campaign_id)
            now = time.monotonic() - started
            if state["submitted"] == state["batches"] and "all_batches_submitted" not in stages:
                stages["all_batches_submitted"] = now
            if state["campaign"] is CampaignStatus.completed and "judgments_collected_and_reconciled" not in stages:
                stages["judgments_collected_and_reconciled"] = now
            if progress:
                progress(state)
            if state["jobs_failed"]:
                raise RuntimeError(f"reward-model training failed; see {run_dir / 'worker.log'}")
            if (state["campaign"] is CampaignStatus.completed and state["jobs_done"] and not state["jobs_active"]
                    and not state["untrained_pairs"]):  # the last model saw every reconciled pair
                stages["reward_model_trained"] = now
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo did not finish within {options.timeout_s:.0f}s (at {state}); "
                                   f"logs in {run_dir}")
            stop.wait(0.5)
        summary = _summary(settings, campaign_id, vendor_url, stages, options, started)
        summary["dashboard"] = {"url": f"{api.url}/dashboard", "token": api.token}
        if serve is not None:
            serve(summary)
            for process in reversed(services.processes):  # the loop is done; keep only the dashboard
                process.stop()
            services.processes.clear()
            stop.wait()
        return summary
    finally:
        services.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
