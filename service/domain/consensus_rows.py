"""Writing a reconciliation's consensus rows (one per item and method), fast at 100k items.

A full reconciliation rewrites three rows per item (``mv``, ``ds``, ``auto``). Built as dicts (a ``uuid4``,
a ``UUID`` parse and a posterior dict per row) and sent through ``json_populate_recordset``, 300k rows took
11.8 s of a 19.5 s reconciliation at 100k items x 5 raters (profiled). On PostgreSQL the rows are now built
column-wise with pandas and numpy (ids from one ``os.urandom`` call, posteriors as JSON text by vectorised
string concatenation) and sent with one ``COPY`` each: 7.2 s for the 300k rows, of which ~2 s per 100k is
the server's own work (indexes 0.7 s, foreign-key checks 0.8 s, measured apart). SQLite (small, embedded)
keeps the dict path.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, col

from service.aggregation import AggregationResult
from service.storage.bulk import bulk_insert, copy_frame
from service.storage.models import Campaign, ConsensusLabel
from service.storage.types import utcnow

__all__ = ["replace_consensus"]

CHUNK = 500  # item ids per DELETE ... IN (...)


def replace_consensus(session: Session, campaign: Campaign, method: str, result: AggregationResult,
                      items: pd.Index, counts: pd.Series, threshold: float, *, all_items: bool,
                      same_as: str | None = None) -> int:
    """Replace ``method``'s rows of ``items`` (every row of the campaign's method when ``all_items``).

    ``same_as``: a method whose rows of these items were just written from the same ``result`` (the primary
    method when it chose DS or MV). On PostgreSQL they are copied on the server: no second frame, CSV and
    ``COPY`` of every row from Python (3.9 -> 3.5 s for a full reconciliation at 100k items x 5)."""
    _delete_rows(session, campaign, method, None if all_items else items)
    if not len(items):
        return 0
    postgres = session.get_bind().dialect.name == "postgresql"
    if same_as is not None and postgres:
        return _copy_rows(session, campaign, method, same_as, items, all_items=all_items)
    table = ConsensusLabel.__table__  # type: ignore[attr-defined]
    probas = result.probas.reindex(items).fillna(0.0)
    conf = probas.max(axis=1).to_numpy()
    labels = result.labels.reindex(items).astype(str).to_numpy()
    n_judgments = counts.reindex(items).fillna(0).astype(int).to_numpy()
    contested = conf < threshold
    if postgres:
        frame = pd.DataFrame({
            "id": _uuid4_hex(len(items)), "campaign_id": campaign.id.hex, "item_id": np.asarray(items, dtype=object),
            "method": method, "label": labels, "confidence": conf, "posterior": _posterior_json(probas),
            "n_judgments": n_judgments, "contested": contested, "computed_at": utcnow().isoformat()})
        return copy_frame(session, table, frame)
    now = utcnow()
    cols = [str(c) for c in probas.columns]
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "campaign_id": campaign.id, "item_id": uuid.UUID(task), "method": method,
         "label": label, "confidence": c, "posterior": dict(zip(cols, post)), "n_judgments": n,
         "contested": hard, "computed_at": now}
        for task, label, c, post, n, hard in zip(items, labels, conf.tolist(), probas.to_numpy().tolist(),
                                                 n_judgments.tolist(), contested.tolist())]
    return bulk_insert(session, table, rows)


def _copy_rows(session: Session, campaign: Campaign, method: str, source: str, items: pd.Index, *,
               all_items: bool) -> int:
    """``method``'s rows of ``items`` as copies of ``source``'s, in one ``INSERT ... SELECT`` on the server."""
    sql = ("INSERT INTO consensuslabel (id, campaign_id, item_id, method, label, confidence, posterior, "
           "n_judgments, contested, computed_at) SELECT gen_random_uuid(), campaign_id, item_id, %s, label, "
           "confidence, posterior, n_judgments, contested, computed_at FROM consensuslabel "
           "WHERE campaign_id = %s AND method = %s")
    params: tuple[Any, ...] = (method, campaign.id, source)
    if not all_items:
        sql += " AND item_id = ANY(%s)"
        params += ([uuid.UUID(t) for t in items],)
    cursor = session.connection().connection.driver_connection.cursor()  # the session's transaction
    try:
        cursor.execute(sql, params)
        return cursor.rowcount
    finally:
        cursor.close()


def _uuid4_hex(n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as 32-digit hex (PostgreSQL's uuid input takes them without dashes)."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    return np.array([text[i:i + 32] for i in range(0, 32 * n, 32)], dtype=object)


def _posterior_json(probas: pd.DataFrame) -> pd.Series:
    """Each row as a JSON object ``{"label": p, ...}``, built column by column (floats as their repr)."""
    out: pd.Series | None = None
    for i, label in enumerate(probas.columns):
        part = f"{json.dumps(str(label))}: " + probas[label].astype(float).map(float.__repr__)
        out = part if out is None else out + ", " + part
    assert out is not None
    return "{" + out + "}"


def _delete_rows(session: Session, campaign: Campaign, method: str, items: pd.Index | None) -> None:
    query = delete(ConsensusLabel).where(col(ConsensusLabel.campaign_id) == campaign.id) \
        .where(col(ConsensusLabel.method) == method)
    if items is None:
        session.exec(query)  # type: ignore[call-overload]
        return
    ids = [uuid.UUID(t) for t in items]
    if session.get_bind().dialect.name == "postgresql":
        # one statement, the ids as one uuid[] parameter, found through the (item_id, method) unique index;
        # 500-id IN lists ANDed with the campaign took 2.0 s for 10k items x 3 methods at 100k items
        # (the planner chose the campaign_id index and filtered every row of the campaign, 20 times)
        cursor = session.connection().connection.driver_connection.cursor()  # the session's transaction
        try:
            cursor.execute("DELETE FROM consensuslabel WHERE item_id = ANY(%s) AND method = %s", (ids, method))
        finally:
            cursor.close()
        return
    for i in range(0, len(ids), CHUNK):
        session.exec(query.where(col(ConsensusLabel.item_id).in_(ids[i:i + CHUNK])))  # type: ignore[call-overload]
