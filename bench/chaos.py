"""Chaos run: judgments through the simulated vendor with faults on, workers SIGKILLed, Redis restarted.

    python -m bench.chaos [--small] [--json]

Full: 20k pairwise items x 5 raters (100k judgments); --small: 1k x 5. Faults: 10% 5xx, 5% 429 with
Retry-After, 2% timeouts, 1% duplicate deliveries, 1% malformed records. Redis + PostgreSQL, 2 worker
processes (+ beat), 3 SIGKILLs of random workers and one Redis restart (no persistence: its queues are
lost and must be recovered from the database). At the end the vendor's own ledger is compared with our
database: produced, stored, lost, double-counted, batches created twice, quarantined vs malformed sent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from bench._harness import PrivateRedis, fresh_postgres
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.outbox import PIPELINE_QUEUES
from service.processes import ManagedProcess, free_port, start_vendor_sim, start_worker
from service.settings import get_settings
from service.storage.db import migrate, session_scope
from service.storage.models import Batch, BatchStatus, Campaign, CampaignStatus, Judgment, JudgmentKind
from service.storage.models import QuarantinedPayload

API_KEY = "chaos-key"


def _items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"chaos-{i}", "prompt": f"Prompt {i}", "responses": [f"left answer {i}", f"right answer {i}"]}
            for i in range(n)]


def _progress(url: str, campaign_id: Any) -> tuple[int, int, int, CampaignStatus]:
    with session_scope(url) as s:
        stored = s.exec(select(func.count()).select_from(Judgment).where(Judgment.campaign_id == campaign_id)).one()
        expected = s.exec(select(func.coalesce(func.sum(Batch.judgments_expected), 0))
                          .where(Batch.campaign_id == campaign_id)).one()
        open_batches = s.exec(select(func.count()).select_from(Batch).where(Batch.campaign_id == campaign_id)
                              .where(Batch.status != BatchStatus.completed)).one()
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return stored, int(expected), open_batches, campaign.status


def run(small: bool, log: Any = sys.stderr) -> dict[str, Any]:
    n_items, raters = (1_000, 5) if small else (20_000, 5)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="cb-chaos-"))
    redis_server = PrivateRedis(tmp)
    redis_server.start()
    workers: list[ManagedProcess] = []
    vendor: ManagedProcess | None = None
    try:
        with fresh_postgres("cb_chaos") as db:
            port = free_port()
            vendor = start_vendor_sim(port=port, state_path=tmp / "vendor.db", api_key=API_KEY,
                                      log_path=tmp / "vendor.log", extra_args=[
                                          "--turnaround=1.0", "--error-rate=0.10", "--rate-limit-rate=0.05",
                                          "--slow-rate=0.02", "--duplicate-rate=0.01", "--malformed-rate=0.01"])
            httpx.post(f"http://127.0.0.1:{port}/sim/faults", json={"slow_s": 6.0}).raise_for_status()
            env = {"CROWDBRIDGE_DATA_DIR": str(tmp / "data"), "CROWDBRIDGE_DATABASE_URL": db,
                   "CROWDBRIDGE_BROKER_URL": redis_server.url,
                   "CROWDBRIDGE_SIMULATED__BASE_URL": f"http://127.0.0.1:{port}",
                   "CROWDBRIDGE_SIMULATED__API_KEY": API_KEY,
                   "CROWDBRIDGE_SIMULATED__OPTIONS": json.dumps({"timeout_s": 4.0}),  # slow answers time out
                   "CROWDBRIDGE_BATCH_SIZE": "100" if small else "500", "CROWDBRIDGE_POLL_INTERVAL_S": "1",
                   "CROWDBRIDGE_STUCK_AFTER_S": "15", "CROWDBRIDGE_VISIBILITY_TIMEOUT_S": "300",
                   "CROWDBRIDGE_RECONCILE_LEASE_S": "45",
                   "CROWDBRIDGE_RETRAIN_ENABLED": "false", "TRANSFORMERS_VERBOSITY": "error"}
            os.environ.update(env)
            get_settings.cache_clear()
            from workers.app import app, configure
            from workers.relay import relay_outbox

            configure(app, get_settings())
            migrate(db)
            beat = ManagedProcess("beat", [sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                                           "--loglevel", "WARNING", "-s", str(tmp / "beat-schedule")],
                                  env=env, log_path=tmp / "beat.log")
            workers.append(beat)  # stopped with the workers in the finally below
            workers += [start_worker(env=env, queues=PIPELINE_QUEUES, concurrency=2, beat=False, name=f"w{i}",
                                    log_path=tmp / f"worker-{i}.log") for i in range(2)]
            with session_scope(db) as s:
                campaign = create_campaign(s, CampaignSpec(name="chaos", kind=JudgmentKind.pairwise,
                                                           raters_per_item=raters, max_extra_rounds=0))
                add_items(s, campaign, _items(n_items))
                start_campaign(s, get_settings(), campaign)
                s.commit()
                campaign_id = campaign.id
            relay_outbox()
            rng = random.Random(0)
            plan = [(0.2, "kill"), (0.45, "kill"), (0.55, "redis"), (0.7, "kill")]
            events: list[dict[str, Any]] = []
            lost_in_restart = 0
            deadline = started + (900 if small else 3600)
            while True:
                stored, expected, open_batches, status = _progress(db, campaign_id)
                share = stored / max(expected, 1)
                while plan and share >= plan[0][0]:
                    _, action = plan.pop(0)
                    if action == "kill":
                        victim = rng.randrange(1, len(workers))  # workers[0] is beat
                        workers[victim].kill()
                        workers[victim].process.wait(timeout=10)
                        workers[victim] = start_worker(env=env, queues=PIPELINE_QUEUES, concurrency=2, beat=False,
                                                       name=f"w{victim}r", log_path=tmp / f"worker-{victim}r.log")
                    else:
                        lost_in_restart = redis_server.restart()
                    events.append({"at_share": round(share, 3), "event": action,
                                   "t_s": round(time.monotonic() - started, 1)})
                    print(f"chaos: {action} at {share:.0%} stored", file=log)
                if status is CampaignStatus.completed and open_batches == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"chaos run did not finish: {stored}/{expected} stored, {open_batches} open")
                print(f"chaos: {stored}/{expected} judgments, {open_batches} batches open", file=log)
                time.sleep(2)
            wall = time.monotonic() - started
            ledger = httpx.get(f"http://127.0.0.1:{port}/sim/ledger", timeout=60).json()
            with session_scope(db) as s:
                ids = s.exec(select(Judgment.vendor_judgment_id)).all()
                reasons = Counter(r.split(":")[0][:60] for r in s.exec(select(QuarantinedPayload.reason)))
            produced = set(ledger["produced_ids"])
            stored_ids = Counter(ids)
            counters = ledger["counters"]
            return {
                "items": n_items, "raters_per_item": raters,
                "judgments_produced_by_vendor": len(produced), "judgments_stored": len(ids),
                "lost": len(produced - set(stored_ids)),
                "double_counted": sum(c - 1 for c in stored_ids.values() if c > 1),
                "stored_not_produced": len(set(stored_ids) - produced),
                "batches": len(ledger["creations_per_external_id"]),
                "batches_submitted_twice": sum(1 for c in ledger["creations_per_external_id"].values() if c > 1),
                "submit_requests": counters.get("submit_requests", 0),
                "submit_replays": counters.get("submit_replays", 0),
                "malformed_sent": counters.get("malformed_sent", 0), "quarantined": sum(reasons.values()),
                "quarantine_reasons": dict(reasons), "duplicates_sent": counters.get("duplicates_sent", 0),
                "events": events, "redis_messages_lost_in_restart": lost_in_restart,
                "wall_s": round(wall, 1), "judgments_per_s": round(len(ids) / wall, 1),
            }
    finally:
        for w in workers:
            w.stop()
        if vendor is not None:
            vendor.stop()
        redis_server.stop()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # clean up on kill
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="1k items x 5 raters (CI size)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = run(args.small)
    ok = (result["lost"] == 0 and result["double_counted"] == 0 and result["batches_submitted_twice"] == 0
          and result["quarantined"] == result["malformed_sent"])
    result["goal_met"] = ok
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
