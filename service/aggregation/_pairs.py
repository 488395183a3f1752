"""Validation and coding of pairwise comparisons (private).

Column contract: ``worker, left, right, winner`` with ``winner`` one of ``"left"``, ``"right"``, ``"tie"``
or the winning item's id (equal to ``left`` or ``right``). Items are coded in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ._data import check_frame, factorize
from .errors import AggregationInputError

__all__ = ["Pairs", "encode_pairs"]


@dataclass(frozen=True, slots=True)
class Pairs:
    left: np.ndarray
    right: np.ndarray
    outcome: np.ndarray  # 1.0 left won, 0.0 right won, 0.5 tie
    worker: np.ndarray
    items: pd.Index
    workers: pd.Index

    @property
    def n_items(self) -> int:
        return len(self.items)


def encode_pairs(df: pd.DataFrame, *, require_connected: bool = True) -> Pairs:
    check_frame(df, ("worker", "left", "right", "winner"), what="pairwise comparisons")
    both, items = pd.factorize(pd.concat([df["left"], df["right"]], ignore_index=True), sort=True)
    items = pd.Index(items, name="item")
    li, ri = both[: len(df)].astype(np.int64), both[len(df):].astype(np.int64)
    if (li == ri).any():
        raise AggregationInputError(f"{int((li == ri).sum())} row(s) compare an item with itself; drop them", field="right")
    codes, kinds = pd.factorize(df["winner"])
    out = np.full(len(df), np.nan)
    word = {"left": 1.0, "right": 0.0, "tie": 0.5}
    per_kind = np.array([word.get(k, np.nan) for k in kinds], dtype=float)
    out = per_kind[codes] if len(kinds) else out
    named = np.isnan(out)
    if named.any():  # winner given as an item id
        wi = items.get_indexer(df["winner"].to_numpy()[named])
        out[named] = np.where(wi == li[named], 1.0, np.where(wi == ri[named], 0.0, np.nan))
    if np.isnan(out).any():
        bad = sorted(set(map(str, df["winner"].to_numpy()[np.isnan(out)])))[:5]
        raise AggregationInputError(
            f"winner must be 'left', 'right', 'tie' or the left/right item id; got {bad}", field="winner"
        )
    w, workers = factorize(df["worker"], "worker")
    if require_connected and len(items) > 1:
        g = sparse.coo_matrix((np.ones(len(li)), (li, ri)), shape=(len(items), len(items)))
        n_comp, comp = connected_components(g, directed=False)
        if n_comp > 1:
            sizes = np.bincount(comp)
            raise AggregationInputError(
                f"the comparison graph has {n_comp} disconnected parts (items per part: "
                f"{', '.join(str(int(x)) for x in sorted(sizes, reverse=True)[:5])}{', ...' if n_comp > 5 else ''}): "
                "scores in different parts cannot be compared; add comparisons that link them",
                field="left",
            )
    return Pairs(left=li, right=ri, outcome=out, worker=w, items=items, workers=workers)
