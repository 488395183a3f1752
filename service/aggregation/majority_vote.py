r"""Majority vote, plain or weighted.

Model: each task's label is the one given most often,

.. math:: \hat z_t = \arg\max_k \sum_{(t,w,y)} s_w \, [y = k],

with :math:`s_w = 1` for plain MV (``skills=None``) or a fixed per-worker weight. ``probas_`` holds the
normalised (weighted) vote shares. ``skills_`` is each worker's accuracy against the consensus.
Ties go to the label seen first in the rows (or first in ``classes``), as in crowd-kit.

Incremental use: ``partial_fit(new_rows)`` adds the new votes to the stored per-task vote counts and
re-decides only the tasks those rows reach; workers' skills are updated from their new rows only.

Preconditions: at least two distinct workers. No citation needed; see Sheng et al., KDD 2008 for MV as a
baseline in repeated labelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from ._data import Coded, encode
from .errors import AggregationInputError
from .base import CategoricalAggregator, most_probable, pin_gold, row_normalize

__all__ = ["MajorityVote"]


def vote_shares(coded: Coded, weights: np.ndarray | None = None) -> np.ndarray:
    """(tasks, classes) weighted vote totals."""
    k = coded.n_classes
    w = None if weights is None else weights[coded.worker]
    return np.bincount(coded.task * k + coded.label, weights=w, minlength=coded.n_tasks * k).reshape(-1, k).astype(float)


def hard_accuracy(coded: Coded, probas: np.ndarray) -> np.ndarray:
    """Fraction of each worker's answers equal to the (tie-broken) consensus label."""
    consensus = most_probable(probas, coded.tie_order)
    hit = (consensus[coded.task] == coded.label).astype(float)
    n = np.bincount(coded.worker, minlength=coded.n_workers)
    return np.bincount(coded.worker, weights=hit, minlength=coded.n_workers) / np.maximum(n, 1)


@dataclass(kw_only=True)
class MajorityVote(CategoricalAggregator):
    """Majority vote over ``task, worker, label`` rows; ``skills`` (Series worker -> weight) makes it weighted.

    Gold tasks, when given, are pinned to their gold label and the skills are measured against that.
    """

    name: ClassVar[str] = "mv"
    skills: pd.Series | None = None

    votes_: np.ndarray = field(init=False, repr=False)  # (tasks, classes) vote totals, for partial_fit
    answers_: pd.Series = field(init=False, repr=False)  # answers per worker, for partial_fit

    def _fit_coded(self, coded: Coded, gold_t: np.ndarray, gold_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights = None
        if self.skills is not None:
            weights = self.skills.reindex(coded.workers).to_numpy(dtype=float)
            if np.isnan(weights).any():
                missing = coded.workers[np.isnan(weights)][:5].tolist()
                raise AggregationInputError(
                    f"no skill for worker(s) {missing}: give every worker a weight", field="skills"
                )
        self.votes_ = vote_shares(coded, weights)
        probas = pin_gold(row_normalize(self.votes_.copy()), gold_t, gold_y)
        return probas, hard_accuracy(coded, probas)

    def partial_fit(self, df: pd.DataFrame) -> Self:
        """Add new ``task, worker, label`` rows to a fitted model; only tasks in ``df`` change label."""
        if not hasattr(self, "votes_"):
            return self.fit(df)
        new = encode(df, classes=list(self.probas_.columns), min_workers=1)
        tasks = self.probas_.index.union(new.tasks)
        ti = tasks.get_indexer(self.probas_.index)
        votes = np.zeros((len(tasks), new.n_classes))
        votes[ti] = self.votes_
        new_t = tasks.get_indexer(new.tasks)[new.task]
        np.add.at(votes, (new_t, new.label), 1.0)
        self.votes_ = votes
        probas = row_normalize(votes.copy())
        labels = most_probable(probas, getattr(self, "_tie_order", None))
        hit = (labels[new_t] == new.label).astype(float)
        workers = self.skills_.index.union(new.workers)
        n_old = self.answers_.reindex(workers, fill_value=0).to_numpy()
        s_old = self.skills_.reindex(workers, fill_value=0.0).to_numpy()
        wi = workers.get_indexer(new.workers)[new.worker]
        n_new = np.bincount(wi, minlength=len(workers))
        h_new = np.bincount(wi, weights=hit, minlength=len(workers))
        n_tot = n_old + n_new
        skills = np.divide(s_old * n_old + h_new, n_tot, out=np.zeros(len(workers)), where=n_tot > 0)
        self.answers_ = pd.Series(n_tot, index=workers, name="answers")
        self.probas_ = pd.DataFrame(probas, index=tasks, columns=self.probas_.columns)
        self.labels_ = pd.Series(self.probas_.columns.to_numpy()[labels], index=tasks, name="label")
        self.skills_ = pd.Series(skills, index=workers, name="skill")
        return self

    def _set_outputs(self, coded: Coded, probas: np.ndarray, skills: np.ndarray) -> None:
        super()._set_outputs(coded, probas, skills)
        n = np.bincount(coded.worker, minlength=coded.n_workers)
        self.answers_ = pd.Series(n, index=coded.workers, name="answers")

