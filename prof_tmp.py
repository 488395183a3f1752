"""Profile one reconciliation of a 100k-item x 5-rater campaign on PostgreSQL (full, then incremental)."""
import cProfile, pstats, random, time, uuid
from datetime import timedelta
from bench._harness import fresh_postgres
from service.settings import Settings
from service.storage.db import migrate, session_scope
from service.storage.bulk import bulk_insert
from service.storage.models import Batch, BatchItem, BatchStatus, Campaign, CampaignStatus, Item, Judgment, JudgmentKind
from service.storage.types import utcnow
from service.domain import reconcile as rec
import tempfile, pathlib

N, R, B = 100_000, 5, 500
with fresh_postgres("cb_prof") as db:
    migrate(db)
    settings = Settings(data_dir=pathlib.Path(tempfile.mkdtemp()), database_url=db, retrain_enabled=False)
    rng = random.Random(0)
    with session_scope(db) as s:
        c = Campaign(name="p", kind=JudgmentKind.pairwise, raters_per_item=R, status=CampaignStatus.running, max_extra_rounds=0)
        s.add(c); s.flush()
        items = [{"id": uuid.uuid4(), "campaign_id": c.id, "external_id": f"x{i}", "prompt": "p", "responses": [{"model_id": None, "text": "a"}, {"model_id": None, "text": "b"}], "gold": None, "meta": {}, "created_at": utcnow()} for i in range(N)]
        bulk_insert(s, Item.__table__, items)
        now = utcnow()
        batches = []
        for b in range(N // B):
            bid = uuid.uuid4()
            batches.append(bid)
            s.add(Batch(id=bid, campaign_id=c.id, vendor="simulated", raters_per_item=R, n_items=B, idempotency_key=bid.hex, status=BatchStatus.completed, completed_at=now))
        s.flush()
        bulk_insert(s, BatchItem.__table__, [{"batch_id": batches[i // B], "item_id": it["id"]} for i, it in enumerate(items)])
        rows = []
        for i, it in enumerate(items):
            truth = "A" if i % 2 else "B"
            for r in rng.sample(range(300), R):
                lab = truth if rng.random() < 0.8 else ("B" if truth == "A" else "A")
                rows.append({"id": uuid.uuid4(), "campaign_id": c.id, "item_id": it["id"], "batch_id": batches[i // B], "vendor": "simulated", "vendor_judgment_id": uuid.uuid4().hex, "rater_id": f"r{r}", "label": lab, "started_at": now - timedelta(seconds=30), "submitted_at": now, "received_at": now, "cost": 0.05, "raw": {"answer": lab}})
        for k in range(0, len(rows), 50_000):
            bulk_insert(s, Judgment.__table__, rows[k:k + 50_000])
        s.commit()
        cid = c.id
    print("data in")
    for label in ("first (full)", "second (nothing new)"):
        with session_scope(db) as s:
            pr = cProfile.Profile(); t = time.perf_counter(); pr.enable()
            res = rec.reconcile_campaign(s, settings, cid)
            pr.disable(); dt = time.perf_counter() - t
        print(label, f"{dt:.2f}s", res.mode, res.touched_items)
        pstats.Stats(pr).sort_stats("cumulative").print_stats(30)
