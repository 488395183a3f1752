"""Load: end-to-end judgments/s against the bare ceiling measured in the same run.

    python -m bench.pipeline [--json] [--sizes 1000,10000] [--raters 1,3,5,10] [--full]

End to end = push -> vendor -> poll -> ingest -> reconcile, on Redis + PostgreSQL with 2 worker
processes, the simulated vendor answering at once (no faults), 500-item batches. The ceiling is
a no-op batched Celery task doing one bulk SQL insert of the same number of rows per batch, on
the same broker, database and workers, measured before and after the end-to-end runs; the ratio
uses the higher of the two. Reported: judgments/s, ceiling rows/s, their ratio, how the cost
grows with items and with raters per item, and where the CPU goes: microseconds of CPU per
judgment (and per ceiling row) spent by the vendor, the workers, PostgreSQL, Redis and this
driver (bench._cpu). On a machine whose cores are all busy, cores / total CPU per judgment bounds
the end-to-end rate. ``--full`` adds 100k items.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, text
from sqlmodel import select

from bench._cpu import CpuMeter, postmaster_pid
from bench._harness import PG_ADMIN, PrivateRedis, fresh_postgres
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, start_campaign
from service.domain.outbox import PIPELINE_QUEUES
from service.processes import ManagedProcess, free_port, start_vendor_sim, start_worker
from service.settings import get_settings
from service.storage.db import get_engine, migrate, session_scope
from service.storage.models import Batch, Campaign, CampaignStatus, Judgment, JudgmentKind

API_KEY = "load-key"
BATCH = 500
PAGE = 5_000  # judgments per result page: one page per batch up to 10 raters per item


def _wait_for_workers(app: Any, n: int, timeout: float = 120.0) -> None:
    """Until ``n`` workers answer a ping: importing the worker (pandas, scipy, torch) takes 3-5 s on a
    busy machine, and a fixed sleep(3) let that start-up land inside the first timed run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or []) >= n:
            return
    raise TimeoutError(f"fewer than {n} workers answered a ping in {timeout:.0f} s")


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError("the run did not finish in time")


def _per_unit(cpu: dict[str, float], units: int) -> dict[str, float]:
    """CPU microseconds per judgment (or ceiling row), per part and in total."""
    out = {name: round(1e6 * seconds / units, 1) for name, seconds in cpu.items()}
    out["total"] = round(sum(out.values()), 1)
    return out


def _ceiling(db: str, rows: int, meter: CpuMeter) -> tuple[float, dict[str, float]]:
    from bench.ceiling_tasks import ceiling_rows, insert_batch, metadata

    engine = get_engine(db)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE bench_ceiling_rows"))
    n_batches = max(1, rows // BATCH)
    meter.start()
    started = time.monotonic()
    for b in range(n_batches):
        insert_batch.delay(f"b{b}", BATCH)

    def done() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(ceiling_rows)).scalar_one() >= n_batches * BATCH

    _wait(done, 600)
    seconds = time.monotonic() - started
    return n_batches * BATCH / seconds, _per_unit(meter.stop(), n_batches * BATCH)


def _end_to_end(db: str, n_items: int, raters: int, tag: str, meter: CpuMeter) -> dict[str, Any]:
    from workers.relay import relay_outbox

    with session_scope(db) as s:
        campaign = create_campaign(s, CampaignSpec(name=f"load-{tag}", kind=JudgmentKind.pairwise,
                                                   raters_per_item=raters, max_extra_rounds=0))
        add_items(s, campaign, [{"id": f"{tag}-{i}", "prompt": f"p {i}", "responses": [f"a {i}", f"b {i}"]}
                                for i in range(n_items)])
        s.commit()
        campaign_id = campaign.id
    meter.start()
    started = time.monotonic()
    with session_scope(db) as s:
        start_campaign(s, get_settings(), s.get(Campaign, campaign_id))  # type: ignore[arg-type]
        s.commit()
    relay_outbox()

    marks: dict[str, float] = {}
    expected = n_items * raters

    def done() -> bool:
        with session_scope(db) as s:
            campaign = s.get(Campaign, campaign_id)
            if "stored_s" not in marks:
                # the batches' counters (committed with each stored page): a count(*) over the judgments
                # every 0.2 s cost the database ~0.1 s a time at 500k rows, inside the timed run
                stored = s.exec(select(func.coalesce(func.sum(Batch.judgments_done), 0))
                                .where(Batch.campaign_id == campaign_id)).one()
                if stored >= expected:
                    marks["stored_s"] = round(time.monotonic() - started, 2)
            return campaign is not None and campaign.status is CampaignStatus.completed

    _wait(done, 3600)
    seconds = time.monotonic() - started
    cpu = meter.stop()
    with session_scope(db) as s:
        stored = s.exec(select(func.count()).select_from(Judgment).where(Judgment.campaign_id == campaign_id)).one()
    return {"items": n_items, "raters": raters, "judgments": stored, "seconds": round(seconds, 2), **marks,
            "judgments_per_s": round(stored / seconds, 1), "ms_per_item": round(1000 * seconds / n_items, 3),
            "cpu_us_per_judgment": _per_unit(cpu, stored)}


def _measure(db: str, meter: CpuMeter, sizes: list[int], raters: list[int], log: Any) -> dict[str, Any]:
    # the ceiling is measured before and after the end-to-end runs (their dead rows and autovacuum lower the
    # second by up to a third on this machine); the ratio uses the higher one
    expected_rows = max(sizes) * 5
    print(f"pipeline: ceiling with {expected_rows} rows (before) ...", file=log)
    ceilings = [_ceiling(db, expected_rows, meter)]
    runs = []
    for n in sizes:
        print(f"pipeline: {n} items x 5 raters ...", file=log)
        runs.append(_end_to_end(db, n, 5, f"n{n}", meter))
    by_raters = []
    for r in raters:
        print(f"pipeline: 2000 items x {r} raters ...", file=log)
        by_raters.append(_end_to_end(db, 2000, r, f"r{r}", meter))
    reference = max(runs, key=lambda r: r["judgments"])
    print(f"pipeline: ceiling with {reference['judgments']} rows (after) ...", file=log)
    ceilings.append(_ceiling(db, int(reference["judgments"]), meter))
    ceiling, ceiling_cpu = max(ceilings, key=lambda c: c[0])
    return {"batch_items": BATCH, "workers": 2, "concurrency_per_worker": 2,
            "ceiling_rows_per_s": round(ceiling, 1),
            "ceiling_runs_rows_per_s": [round(c, 1) for c, _ in ceilings],
            "ceiling_cpu_us_per_row": ceiling_cpu, "cpu_cores": psutil.cpu_count(),
            "stored_judgments_per_s": round(reference["judgments"] / reference["stored_s"], 1)
            if reference.get("stored_s") else None,
            "by_items": runs, "by_raters": by_raters,
            "end_to_end_judgments_per_s": reference["judgments_per_s"],
            "ratio_to_ceiling": round(reference["judgments_per_s"] / ceiling, 3)}


def run(sizes: list[int], raters: list[int], log: Any = sys.stderr) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="cb-load-"))
    redis_server = PrivateRedis(tmp)
    redis_server.start()
    processes: list[ManagedProcess] = []
    try:
        with fresh_postgres("cb_load") as db:
            try:
                port = free_port()
                vendor = start_vendor_sim(port=port, state_path=tmp / "vendor.db", api_key=API_KEY,
                                          log_path=tmp / "vendor.log", extra_args=["--turnaround=0.01"])
                processes.append(vendor)
                env = {"CROWDBRIDGE_DATA_DIR": str(tmp / "data"), "CROWDBRIDGE_DATABASE_URL": db,
                       "CROWDBRIDGE_BROKER_URL": redis_server.url,
                       "CROWDBRIDGE_SIMULATED__BASE_URL": f"http://127.0.0.1:{port}",
                       "CROWDBRIDGE_SIMULATED__API_KEY": API_KEY,
                       "CROWDBRIDGE_SIMULATED__OPTIONS": f'{{"page_size": {PAGE}}}',
                       "CROWDBRIDGE_BATCH_SIZE": str(BATCH), "CROWDBRIDGE_POLL_INTERVAL_S": "0.5",
                       "CROWDBRIDGE_RETRAIN_ENABLED": "false"}
                os.environ.update(env)
                get_settings.cache_clear()
                from workers.app import app, configure

                configure(app, get_settings())
                migrate(db)
                workers = [start_worker(env=env, queues=PIPELINE_QUEUES, concurrency=2, beat=i == 0,
                                        name=f"load{i}", log_path=tmp / f"worker-{i}.log",
                                        extra_args=["-I", "bench.ceiling_tasks"]) for i in range(2)]
                processes += workers
                _wait_for_workers(app, 2)
                meter = CpuMeter({"vendor": [vendor.process.pid], "workers": [w.process.pid for w in workers],
                                  "postgres": [postmaster_pid(PG_ADMIN)],
                                  "redis": [redis_server.process.pid if redis_server.process else None],
                                  "driver": [os.getpid()]})
                return _measure(db, meter, sizes, raters, log)
            finally:  # before the database is dropped: beat polls it until the workers stop
                for p in processes:
                    p.stop()
    finally:
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="1000,10000", help="items per run (5 raters each)")
    parser.add_argument("--raters", default="1,3,5,10", help="raters per item, at 2,000 items")
    parser.add_argument("--full", action="store_true", help="also 100,000 items")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")] + ([100_000] if args.full else [])
    result = run(sizes, [int(x) for x in args.raters.split(",") if x])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    runs = " and ".join(f"{c:.0f}" for c in result["ceiling_runs_rows_per_s"])
    print(f"ceiling (no-op bulk insert, {BATCH}-row batches): {result['ceiling_rows_per_s']:.0f} rows/s "
          f"(before and after the runs: {runs})")
    for row in result["by_items"] + result["by_raters"]:
        print(f"{row['items']:>7} items x {row['raters']:>2} raters: {row['judgments']:>7} judgments in "
              f"{row['seconds']:>7.1f} s = {row['judgments_per_s']:>8.1f}/s ({row['ms_per_item']:.2f} ms/item)")
    if result["stored_judgments_per_s"]:
        print(f"storing alone (until every judgment is in): {result['stored_judgments_per_s']:.0f} judgments/s = "
              f"{result['stored_judgments_per_s'] / result['ceiling_rows_per_s']:.2f} of the ceiling")
    print(f"end to end / ceiling = {result['ratio_to_ceiling']:.2f} (target >= 0.50)")
    reference = max(result["by_items"], key=lambda r: r["judgments"])
    parts = ", ".join(f"{k} {v:.0f}" for k, v in reference["cpu_us_per_judgment"].items() if k != "total")
    ceiling_parts = ", ".join(f"{k} {v:.0f}" for k, v in result["ceiling_cpu_us_per_row"].items() if k != "total")
    print(f"CPU per judgment end to end: {reference['cpu_us_per_judgment']['total']:.0f} us ({parts}); "
          f"per ceiling row: {result['ceiling_cpu_us_per_row']['total']:.0f} us ({ceiling_parts}); "
          f"{result['cpu_cores']} cores")


if __name__ == "__main__":
    main()
