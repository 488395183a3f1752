"""Reconcile a campaign: consensus per item, agreement per campaign/vendor/batch/rater, rater flags,
extra judgments for contested items (adaptive overlap, ``service.domain.overlap``), then the retraining
policy.

The numerics live in ``service.aggregation``; this module loads rows, builds the frame, calls the
aggregators and stores the results with the method's name and parameters.

Consensus rows (``ConsensusLabel``), one per item and method:

- ``"auto"`` (``PRIMARY_METHOD``): the method chosen without gold by held-out likelihood of rater answers
  among the fast methods (``AUTO_CANDIDATES``: MV, Wawa, MAP Dawid–Skene, one-coin DS, MACE). Its
  posterior decides which items are contested. The choice, the reason and every candidate's score are in
  the campaign's ``consensus_method`` report.
- ``"mv"`` and ``"ds"`` (MAP Dawid–Skene), always, so callers can compare.

Incremental. Reconciling runs after every completed batch. The Dawid–Skene state (each rater's expected
confusion counts, and which batches have been folded in with how many judgments) is kept in an
``AgreementReport`` row with ``scope="state"`` (JSON ``details``); the task posteriors are the stored "ds"
rows. A new batch is folded in with ``DawidSkene.partial_fit``, which runs EM over the new judgments only:
only the items and raters they reach change, and only those consensus rows are rewritten. A full refit
runs when there is no state, every ``FULL_REFIT_EVERY`` updates, when the new judgments outnumber the folded
ones, when gold items exist (partial fits do not pin gold), when a folded batch gained judgments, or when a
new label appears. The auto choice is re-made at every full refit; between refits the chosen method is
kept (MV and DS are updated incrementally, the others refit on the whole campaign, which is cheap), and
for every method only the rows of items the new judgments reached are rewritten: the other items keep
the posterior of the fit that last touched them until the next full refit, and the reconciliation reads
those back, so contested items and agreement follow what is stored. (Rewriting all 100k "auto" rows after
each batch cost 2.5 s of a 6 s incremental reconciliation at 100k items, and bloated the table.)
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import String, cast, delete
from sqlmodel import Session, col, select

from service.aggregation import AggregationResult, DawidSkene, fit_method, select_method
from service.domain.agreement_rows import agreement_rows, report_row
from service.domain.campaigns import PRIMARY_CONSENSUS, get_campaign, lock_campaign
from service.domain.consensus_rows import replace_consensus
from service.domain.overlap import request_extra_judgments, vendor_agreement, vendor_quality_rows
from service.domain.retrain import maybe_enqueue_retrain
from service.settings import Settings
from service.storage.bulk import bulk_insert
from service.storage.models import (
    AgreementReport,
    Batch,
    BatchStatus,
    Campaign,
    CampaignStatus,
    ConsensusLabel,
    Item,
    Judgment,
)
from service.storage.types import utcnow

__all__ = ["CONSENSUS_METHODS", "FULL_REFIT_EVERY", "PRIMARY_METHOD", "ReconcileResult", "judgments_frame",
           "reconcile_campaign", "reconcile_due"]

PRIMARY_METHOD = PRIMARY_CONSENSUS
CONSENSUS_METHODS = ("mv", "ds", PRIMARY_METHOD)
FULL_REFIT_EVERY = 8
STATE_SCOPE, STATE_METRIC = "state", "ds_state"
PACE_FACTOR = 2.0  # wait twice a reconciliation's duration before the next while batches are open
OPEN = (BatchStatus.pending, BatchStatus.submitting, BatchStatus.submitted)


@dataclass(frozen=True)
class ReconcileResult:
    items: int
    judgments: int
    contested: int
    alpha: float | None
    extra_batches: int
    campaign_status: str
    mode: str = "full"  # full | incremental
    method: str = ""  # the method "auto" chose
    extra_vendor: str | None = None  # where contested items went for more judgments (best measured quality)
    touched_items: int = 0


FRAME_COLUMNS = ["task", "worker", "label", "vendor", "batch", "seconds"]


def judgments_frame(session: Session, campaign_id: uuid.UUID) -> pd.DataFrame:
    """All of a campaign's judgments as ``task, worker, label, vendor, batch, seconds`` (strings; seconds
    from start to submit, NaN when unknown).

    On PostgreSQL the rows come as one ``COPY ... TO STDOUT`` CSV parsed by pandas' C reader: building
    them as ORM rows (a UUID and two timezone conversions per row in Python) was half of a
    reconciliation's time in the pipeline bench (py-spy, 10k items x 5 raters)."""
    if session.get_bind().dialect.name == "postgresql":
        return _pg_frame(session, campaign_id)
    rows = session.exec(select(Judgment.item_id, Judgment.rater_id, Judgment.label, Judgment.vendor,
                               Judgment.batch_id, Judgment.started_at, Judgment.submitted_at)
                        .where(Judgment.campaign_id == campaign_id)).all()
    frame = pd.DataFrame(rows, columns=["task", "worker", "label", "vendor", "batch", "started", "submitted"])
    frame["task"] = frame["task"].astype(str)
    frame["batch"] = frame["batch"].astype(str)
    secs = (pd.to_datetime(frame["submitted"], utc=True) - pd.to_datetime(frame["started"], utc=True))
    frame["seconds"] = secs.dt.total_seconds()
    return frame.drop(columns=["started", "submitted"])


def _pg_frame(session: Session, campaign_id: uuid.UUID) -> pd.DataFrame:
    sql = ("COPY (SELECT item_id, rater_id, label, vendor, batch_id, "
           "EXTRACT(EPOCH FROM submitted_at - started_at) FROM judgment WHERE campaign_id = '{}') "
           "TO STDOUT WITH (FORMAT csv)").format(uuid.UUID(str(campaign_id)))  # a UUID: nothing to inject
    buffer = io.BytesIO()
    cursor = session.connection().connection.driver_connection.cursor()  # the session's transaction
    try:
        with cursor.copy(sql) as copy:
            for block in copy:
                buffer.write(block)
    finally:
        cursor.close()
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "seconds" else str) for c in FRAME_COLUMNS})
    # every text column as written (no "NA"/"null" guessing); NULL batch and seconds (empty fields) are NaN
    return pd.read_csv(buffer, header=None, names=FRAME_COLUMNS, keep_default_na=False,
                       dtype={c: str for c in FRAME_COLUMNS[:5]} | {"seconds": float},
                       na_values={"batch": [""], "seconds": [""]})


# -- incremental state ------------------------------------------------------------------------------------
def _load_state(session: Session, campaign: Campaign) -> AgreementReport | None:
    return session.exec(select(AgreementReport).where(AgreementReport.campaign_id == campaign.id)
                        .where(AgreementReport.scope == STATE_SCOPE)
                        .where(AgreementReport.metric == STATE_METRIC)).first()


def _stored_rows(session: Session, campaign: Campaign, method: str,
                 classes: list[str]) -> tuple[pd.Series, pd.DataFrame] | None:
    """``method``'s stored consensus: (labels, posteriors over ``classes``) by item, or None when none.

    Posteriors come as JSON text parsed by orjson: the ORM path (a UUID and a json.loads per row) took 1.8 s
    of an 8 s incremental reconciliation at 100k items (cProfile)."""
    posterior = ConsensusLabel.posterior  # type: ignore[var-annotated]
    rows = session.execute(select(cast(ConsensusLabel.item_id, String), ConsensusLabel.label,
                                  cast(posterior, String))
                           .where(ConsensusLabel.campaign_id == campaign.id)
                           .where(ConsensusLabel.method == method)).all()
    if not rows:
        return None
    index = pd.Index([_hyphenated(i) for i, _, _ in rows], name="task")
    probas = pd.DataFrame([orjson.loads(p) for _, _, p in rows], index=index)
    labels = pd.Series([label for _, label, _ in rows], index=index, name="label", dtype=object)
    return labels, probas.reindex(columns=classes, fill_value=0.0).fillna(0.0)


def _stored_ds(session: Session, campaign: Campaign, state: dict[str, Any]) -> DawidSkene | None:
    classes = list(state["classes"])
    stored = _stored_rows(session, campaign, "ds", classes)
    if stored is None:
        return None
    k = len(classes)
    counts = np.asarray(state["counts"], dtype=float).reshape(-1, k)
    idx = pd.MultiIndex.from_product([state["workers"], classes], names=["worker", "label"])
    return DawidSkene.from_state(counts=pd.DataFrame(counts, index=idx, columns=classes), probas=stored[1],
                                 **state.get("params", {}))


def _keep_untouched(session: Session, campaign: Campaign, fresh: AggregationResult, touched: pd.Index,
                    classes: list[str]) -> AggregationResult | None:
    """``fresh`` (a whole-campaign refit of the chosen method) for the items new judgments reached, the
    stored primary rows for the rest; None when nothing is stored (then every row is written)."""
    stored = _stored_rows(session, campaign, PRIMARY_METHOD, classes)
    if stored is None:
        return None
    stored_labels, stored_probas = stored
    keep = stored_labels.index.intersection(fresh.labels.index).difference(touched)
    labels, probas = fresh.labels.astype(object), fresh.probas.copy()
    labels.loc[keep] = stored_labels.loc[keep]
    probas.loc[keep] = stored_probas.reindex(columns=probas.columns, fill_value=0.0).loc[keep].to_numpy()
    return AggregationResult(method=fresh.method, labels=labels, probas=probas, skills=fresh.skills,
                             params=fresh.params)


def _hyphenated(item_id: str) -> str:
    """An item id as ``str(uuid.UUID)`` writes it (SQLite stores UUIDs as 32 hex digits)."""
    return item_id if len(item_id) == 36 else str(uuid.UUID(item_id))


def _plan(frame: pd.DataFrame, state: dict[str, Any] | None, has_gold: bool) -> tuple[bool, pd.Series, str]:
    """(incremental?, mask of new rows, why)."""
    per_batch = frame.groupby("batch").size()
    if state is None:
        return False, pd.Series(True, index=frame.index), "first reconcile"
    folded = {str(k): int(v) for k, v in state.get("folded", {}).items()}
    new = ~frame["batch"].isin(list(folded))
    why = ""
    if has_gold:
        why = "gold items present (partial fits do not pin gold)"
    elif any(int(per_batch.get(b, 0)) != n for b, n in folded.items()):
        why = "a folded batch changed its judgments"
    elif not set(frame.loc[new, "label"]) <= set(state["classes"]):
        why = "a new label appeared"
    elif int(state.get("updates_since_full", 0)) + 1 >= FULL_REFIT_EVERY:
        why = f"periodic full refit (every {FULL_REFIT_EVERY} updates)"
    elif new.sum() > (~new).sum():
        why = "new judgments outnumber the folded ones"
    if why:
        return False, pd.Series(True, index=frame.index), why
    return True, new, "incremental"


def _state_details(ds: DawidSkene, frame: pd.DataFrame, updates: int, chosen: str,
                   selection: dict[str, Any]) -> dict[str, Any]:
    return {"classes": [str(c) for c in ds.probas_.columns], "workers": [str(w) for w in ds.skills_.index],
            "counts": np.round(ds.counts_, 10).ravel().tolist(), "params": ds.params(),
            "folded": {str(k): int(v) for k, v in frame.groupby("batch").size().items()},
            "updates_since_full": updates, "chosen": chosen, "selection": selection}


# -- pacing ---------------------------------------------------------------------------------------------
def reconcile_due(session: Session, settings: Settings, campaign_id: uuid.UUID | str) -> bool:
    """False while the campaign still has open batches and its last reconciliation ended less than
    ``max(reconcile_min_interval_s, PACE_FACTOR x its duration)`` ago.

    Every completed batch asks for a reconciliation, and each one reads the whole campaign, so back to back
    they grow quadratically with a large campaign and starve ingestion (pipeline bench, 100k items: a 20 s
    reconciliation after each of 200 batches). Paced, they take at most ~1/3 of the time while batches
    arrive. Nothing is lost by skipping: a later batch's completion asks again, and the last batch's (no open
    batch left) always runs; the sweeper catches anything left over.
    """
    cid = uuid.UUID(str(campaign_id))
    row = session.exec(select(AgreementReport.computed_at, AgreementReport.details)
                       .where(AgreementReport.campaign_id == cid).where(AgreementReport.scope == STATE_SCOPE)
                       .where(AgreementReport.metric == STATE_METRIC)).first()
    if row is None:
        return True
    computed_at, details = row
    still_open = session.exec(select(Batch.id).where(Batch.campaign_id == cid)
                              .where(col(Batch.status).in_(OPEN))).first()
    if still_open is None:
        return True
    wait = max(settings.reconcile_min_interval_s, PACE_FACTOR * float((details or {}).get("seconds", 0.0)))
    return (utcnow() - computed_at).total_seconds() >= wait


# -- the use case -----------------------------------------------------------------------------------------
def reconcile_campaign(session: Session, settings: Settings, campaign_ref: uuid.UUID | str) -> ReconcileResult:
    started = time.perf_counter()
    campaign = get_campaign(session, campaign_ref)
    loaded_at = utcnow()  # every batch completed before this has all its judgments in the frame
    frame = judgments_frame(session, campaign.id)
    if frame.empty:
        return ReconcileResult(0, 0, 0, None, 0, campaign.status.value)
    gold = pd.Series({str(i): g for i, g in session.exec(
        select(Item.id, Item.gold).where(Item.campaign_id == campaign.id).where(col(Item.gold).is_not(None)))},
        dtype=object)
    gold_arg = gold if len(gold) else None
    labels_frame = frame[["task", "worker", "label"]]
    counts = frame.groupby("task").size()
    state_row = _load_state(session, campaign)
    state = state_row.details if state_row is not None else None
    incremental, new, why = _plan(frame, state, gold_arg is not None)
    ds: DawidSkene | None = None
    if incremental:
        assert state is not None
        ds = _stored_ds(session, campaign, state)
        if ds is None:
            incremental, why = False, "no stored posteriors"
    if incremental and ds is not None and state is not None:
        if new.any():  # none new: a batch that completed during the last run, already in its frame
            ds.partial_fit(labels_frame[new.to_numpy()])
        touched: pd.Index | None = pd.Index(frame.loc[new, "task"].unique())
        chosen, selection = state["chosen"], dict(state.get("selection", {}))
        updates = int(state.get("updates_since_full", 0)) + 1
    else:
        ds = DawidSkene().fit(labels_frame, gold=gold_arg)
        touched = None
        # the choice only: the chosen method is fitted on all the data once, below (or is DS or MV, fitted
        # anyway); fit_method("auto") fitted it again, a third full fit when it was neither
        chosen, scores, reason = select_method(labels_frame, gold=gold_arg)
        selection = {"reason": reason, "scores": scores}
        updates = 0
    results: dict[str, AggregationResult] = {"ds": ds.result(), "mv": fit_method("mv", labels_frame, gold=gold_arg)}
    primary = results[chosen] if chosen in results else fit_method(chosen, labels_frame, gold=gold_arg)
    rewrite_primary_all = touched is None  # MV and DS above are already "stored rows + touched items"
    if touched is not None and chosen not in results:
        assert state is not None
        merged = _keep_untouched(session, campaign, primary, touched, [str(c) for c in state["classes"]])
        if merged is None:
            rewrite_primary_all = True
        else:
            primary = merged
    results[PRIMARY_METHOD] = AggregationResult(method=chosen, labels=primary.labels, probas=primary.probas,
                                                skills=primary.skills, params={**primary.params, **selection})
    # the write phase: serialize writers of this campaign (extra rounds must not double up). The
    # computation above ran without the lock; reconcile_lease keeps reconciliations one at a time.
    lock_campaign(session, campaign)
    all_items = pd.Index(counts.index)
    for method in CONSENSUS_METHODS:  # the primary last: when it chose DS or MV, it copies their new rows
        rewrite = None if touched is None or (method == PRIMARY_METHOD and rewrite_primary_all) else touched
        replace_consensus(session, campaign, method, results[method], all_items if rewrite is None else rewrite,
                          counts, settings.contested_threshold, all_items=rewrite is None,
                          same_as=chosen if method == PRIMARY_METHOD and chosen in results else None)
    probas = results[PRIMARY_METHOD].probas.reindex(all_items)
    contested = [uuid.UUID(t) for t in all_items[(probas.max(axis=1) < settings.contested_threshold).to_numpy()]]
    auditable = {str(b) for b in session.exec(select(Batch.id).where(Batch.campaign_id == campaign.id)
                                              .where(Batch.auditable == True))}  # noqa: E712
    session.exec(delete(AgreementReport).where(col(AgreementReport.campaign_id) == campaign.id)  # type: ignore[call-overload]
                 .where(col(AgreementReport.scope) != STATE_SCOPE))
    reports = agreement_rows(campaign, frame, results[PRIMARY_METHOD].labels, auditable)
    by_vendor = vendor_agreement(frame, results[PRIMARY_METHOD].labels)  # every judgment, auditable or not
    reports += vendor_quality_rows(campaign, by_vendor)
    n_touched = len(all_items) if touched is None else len(touched)
    reports.append(report_row(
        campaign, "campaign", str(campaign.id), "consensus_method", None, len(frame),
        details={"chosen": chosen, **selection, "mode": "incremental" if touched is not None else "full",
                 "why": why, "new_judgments": int(new.sum()), "touched_items": n_touched,
                 "seconds": round(time.perf_counter() - started, 4)}))
    bulk_insert(session, AgreementReport.__table__, reports)  # type: ignore[attr-defined]
    details = _state_details(ds, frame, updates, chosen, selection)
    details["seconds"] = round(time.perf_counter() - started, 3)  # paces the next one (reconcile_due)
    if state_row is None:
        session.add(AgreementReport(campaign_id=campaign.id, scope=STATE_SCOPE, scope_key=str(campaign.id),
                                    metric=STATE_METRIC, n=len(frame), details=details))
    else:
        state_row.details, state_row.n, state_row.computed_at = details, len(frame), utcnow()
        session.add(state_row)
    extra = request_extra_judgments(session, settings, campaign, contested, by_vendor)
    still_open = session.exec(select(Batch.id).where(Batch.campaign_id == campaign.id)
                              .where(col(Batch.status).in_(OPEN))).first()
    # a batch that completed while this ran may have judgments the frame lacks: the campaign is complete
    # only once a reconciliation has seen them (reconcile_lease.release enqueues that one)
    completed_since = session.exec(select(Batch.id).where(Batch.campaign_id == campaign.id)
                                   .where(col(Batch.completed_at) >= loaded_at)).first()
    if still_open is None and completed_since is None and campaign.status is CampaignStatus.running:
        campaign.status = CampaignStatus.completed
        session.add(campaign)
    session.flush()
    maybe_enqueue_retrain(session, settings, campaign, trigger="policy")
    session.commit()
    return ReconcileResult(items=len(all_items), judgments=len(frame), contested=len(contested),
                           alpha=reports[0]["value"], extra_batches=extra.batches, extra_vendor=extra.vendor,
                           campaign_status=campaign.status.value,
                           mode="incremental" if touched is not None else "full", method=chosen,
                           touched_items=n_touched)
