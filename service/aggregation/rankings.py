"""Rankings: validation, coding and the base class of the k-way ranking aggregators.

Column contract (rankings): a DataFrame with columns ``worker, task, ranking``; one row per answer;
``ranking`` is a string of item names from best to worst separated by ``>``, e.g. ``"C>A>B"``
(whitespace around names is ignored). A ranking may list only some of the task's items (a partial or
top-k ranking); it must name at least two distinct items and none twice. Ties (``=``) are not supported.
Items are per task: item ``A`` of task ``t1`` and ``A`` of ``t2`` are different things.

Every aggregator sets ``labels_`` (Series task -> consensus ranking string, named "ranking"), ``scores_``
(Series indexed by ``(task, item)`` -> score, higher is better, named "score") and ``skills_`` (Series
worker -> mean Kendall agreement of the rater's rankings with the consensus, in [0, 1]: 1 orders every
pair as the consensus does, 0.5 is random). Ties in a score go to the item that sorts first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from ._data import check_frame, factorize
from .errors import AggregationInputError

__all__ = ["RankingAggregator", "Rankings", "encode_rankings"]


@dataclass(frozen=True, slots=True)
class Rankings:
    """Rankings flattened to one entry per (ranking, position).

    ``rank_id`` numbers the rankings (rows), ``item`` codes ``(task, item)`` pairs globally, ``pos`` is the
    0-based position (0 = best), ``length`` the length of the entry's ranking; ``item_task`` maps each
    item code to its task code.
    """

    rank_id: np.ndarray
    item: np.ndarray
    pos: np.ndarray
    length: np.ndarray
    rank_task: np.ndarray  # per ranking: task code
    rank_worker: np.ndarray  # per ranking: worker code
    item_task: np.ndarray
    items: pd.MultiIndex  # (task, item) per item code
    tasks: pd.Index
    workers: pd.Index

    @property
    def n_items(self) -> int:
        return len(self.items)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every ordered pair a ranking states: (ranking id, better item, worse item)."""
        starts = np.flatnonzero(self.pos == 0)
        lengths = self.length[starts]
        out_r, out_a, out_b = [], [], []
        for m in np.unique(lengths):
            sel = starts[lengths == m]
            i, j = np.triu_indices(int(m), k=1)
            idx = sel[:, None]
            out_r.append(np.repeat(self.rank_id[sel], len(i)))
            out_a.append(self.item[(idx + i[None, :]).ravel()])
            out_b.append(self.item[(idx + j[None, :]).ravel()])
        return np.concatenate(out_r), np.concatenate(out_a), np.concatenate(out_b)


def encode_rankings(df: Any) -> Rankings:
    check_frame(df, ("worker", "task", "ranking"), what="rankings")
    text = df["ranking"].astype(str)
    if text.str.contains("=", regex=False).any():
        raise AggregationInputError(
            "ties ('=') inside a ranking are not supported: break them or drop those rows", field="ranking"
        )
    parts = text.str.split(">")
    lengths = parts.str.len().to_numpy()
    flat = pd.Series(np.concatenate(parts.to_numpy()) if len(parts) else [], dtype=object).str.strip()
    if (flat == "").any():
        bad = text[[any(p.strip() == "" for p in ps) for ps in parts]].iloc[:3].tolist()
        raise AggregationInputError(f"empty item name in ranking(s) {bad}: write rankings like 'C>A>B'",
                                    field="ranking")
    if (lengths < 2).any():
        bad = text[lengths < 2].iloc[:3].tolist()
        raise AggregationInputError(f"ranking(s) {bad} name fewer than two items: write them like 'C>A>B'",
                                    field="ranking")
    t, tasks = factorize(df["task"], "task")
    w, workers = factorize(df["worker"], "worker")
    n = len(df)
    rank_id = np.repeat(np.arange(n), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(flat)) - np.repeat(starts, lengths)
    pairs = pd.MultiIndex.from_arrays([tasks.to_numpy()[t[rank_id]], flat.to_numpy()], names=["task", "item"])
    item, items = pd.factorize(pairs, sort=True)
    items = pd.MultiIndex.from_tuples(list(items), names=["task", "item"])
    dup = pd.DataFrame({"r": rank_id, "i": item}).duplicated().to_numpy()
    if dup.any():
        bad = text.iloc[np.unique(rank_id[dup])[:3]].tolist()
        raise AggregationInputError(f"ranking(s) {bad} name an item twice", field="ranking")
    item_task = tasks.get_indexer(items.get_level_values("task"))
    return Rankings(rank_id=rank_id, item=item.astype(np.int64), pos=pos, length=np.repeat(lengths, lengths),
                    rank_task=t, rank_worker=w, item_task=item_task, items=items, tasks=tasks, workers=workers)


def kendall_agreement(r: Rankings, score: np.ndarray) -> np.ndarray:
    """Per worker: the share of the pairs it ranked that the scores order the same way (ties count 1/2)."""
    rid, a, b = r.pairs()
    agree = np.where(score[a] > score[b], 1.0, np.where(score[a] == score[b], 0.5, 0.0))
    w = r.rank_worker[rid]
    n = np.bincount(w, minlength=len(r.workers))
    return np.bincount(w, weights=agree, minlength=len(r.workers)) / np.maximum(n, 1)


@dataclass(kw_only=True)
class RankingAggregator:
    """Base of the ``worker, task, ranking`` aggregators (see the module docstring for the contract).

    Subclasses implement ``_scores(rankings) -> np.ndarray`` (one score per ``(task, item)`` code).
    """

    labels_: pd.Series = field(init=False, repr=False)
    scores_: pd.Series = field(init=False, repr=False)
    skills_: pd.Series = field(init=False, repr=False)

    def fit(self, df: pd.DataFrame) -> Self:
        r = encode_rankings(df)
        score = self._scores(r)
        self.scores_ = pd.Series(score, index=r.items, name="score")
        # consensus: per task, items by score descending, ties to the item that sorts first
        order = np.lexsort((np.arange(r.n_items), -score, r.item_task))
        names = r.items.get_level_values("item").to_numpy()[order]
        task_of = r.item_task[order]
        splits = np.flatnonzero(np.diff(task_of)) + 1
        ranking = [">".join(map(str, g)) for g in np.split(names, splits)]
        self.labels_ = pd.Series(ranking, index=r.tasks[np.unique(task_of)], name="ranking")
        self.skills_ = pd.Series(kendall_agreement(r, score), index=r.workers, name="skill")
        return self

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).labels_

    def _scores(self, r: Rankings) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
