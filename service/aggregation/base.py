"""Base class of the categorical aggregators and the result record the domain layer stores.

Column contract (categorical): a DataFrame with columns ``task, worker, label``; one row per answer;
repeated ``(task, worker)`` rows count as separate answers. Values are usually strings; any sortable,
hashable values work. Labels are the distinct values seen, in sorted order, unless the estimator's
``classes`` declares the set (and order).

Deterministic tie-breaking: when two labels are equally probable for a task, the label that occurs first
in the input rows wins (or the first in ``classes`` when declared). This is crowd-kit's rule (its
``idxmax`` runs over columns in first-seen order), so MV and DS give crowd-kit's labels exactly. Tasks,
workers and the ``probas_`` columns are sorted, so everything but the tie-break is independent of row
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from ._data import Coded, encode, encode_gold

__all__ = ["AggregationResult", "CategoricalAggregator"]


@dataclass(frozen=True, kw_only=True)
class AggregationResult:
    """What one aggregation run produced: store it with ``method`` and ``params``.

    ``labels`` (Series task -> label, named "label"), ``probas`` (DataFrame task x label, rows sum to 1),
    ``skills`` (Series worker -> quality in [0, 1], named "skill"), ``params`` (constructor arguments plus,
    for ``auto``, why the method was chosen).
    """

    method: str
    labels: pd.Series
    probas: pd.DataFrame
    skills: pd.Series
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class CategoricalAggregator:
    """Base of the ``task, worker, label`` aggregators (sklearn shape).

    Subclasses implement ``_fit_coded(coded, gold_t, gold_y) -> (probas, skills)`` over integer codes and
    may set more fitted attributes. ``classes`` (optional) declares the label set; labels outside it raise
    ``AggregationInputError``.
    """

    classes: Sequence[Any] | None = None

    name: ClassVar[str] = ""  # registry key, set by subclasses

    labels_: pd.Series = field(init=False, repr=False)
    probas_: pd.DataFrame = field(init=False, repr=False)
    skills_: pd.Series = field(init=False, repr=False)

    def fit(self, df: pd.DataFrame, gold: pd.Series | None = None) -> Self:
        """Fit on a ``task, worker, label`` frame. ``gold`` (Series task -> label) anchors rater quality
        where the method supports it (DS, one-coin DS, GLAD, MACE); Wawa and MV use it to pin gold tasks."""
        coded = encode(df, classes=self.classes)
        gold_t, gold_y = encode_gold(gold, coded)
        probas, skills = self._fit_coded(coded, gold_t, gold_y)
        self._set_outputs(coded, probas, skills)
        return self

    def fit_predict(self, df: pd.DataFrame, gold: pd.Series | None = None) -> pd.Series:
        return self.fit(df, gold).labels_

    def fit_predict_proba(self, df: pd.DataFrame, gold: pd.Series | None = None) -> pd.DataFrame:
        return self.fit(df, gold).probas_

    def params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-friendly) for storing next to the result."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                v = getattr(self, f.name)
                out[f.name] = list(v) if isinstance(v, (tuple, pd.Index)) else v
        return out

    def result(self) -> AggregationResult:
        return AggregationResult(
            method=self.name, labels=self.labels_, probas=self.probas_, skills=self.skills_, params=self.params()
        )

    # -- for subclasses -------------------------------------------------------------------------------
    def _fit_coded(
        self, coded: Coded, gold_t: np.ndarray, gold_y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_outputs(self, coded: Coded, probas: np.ndarray, skills: np.ndarray) -> None:
        self._tie_order = coded.tie_rank()
        self.probas_ = pd.DataFrame(probas, index=coded.tasks, columns=coded.classes)
        self.labels_ = pd.Series(
            coded.classes.to_numpy()[most_probable(probas, self._tie_order)], index=coded.tasks, name="label"
        )
        self.skills_ = pd.Series(skills, index=coded.workers, name="skill")


def most_probable(probas: np.ndarray, tie_order: np.ndarray | None = None) -> np.ndarray:
    """Row-wise argmax; among equal maxima the class listed first in ``tie_order`` wins."""
    if tie_order is None or len(tie_order) == 0:
        return np.argmax(probas, axis=1)
    return tie_order[np.argmax(probas[:, tie_order], axis=1)]


def pin_gold(probas: np.ndarray, gold_t: np.ndarray, gold_y: np.ndarray) -> np.ndarray:
    """Overwrite the posterior of gold tasks with a one-hot on the gold label (in place)."""
    if len(gold_t):
        probas[gold_t] = 0.0
        probas[gold_t, gold_y] = 1.0
    return probas


def row_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    s = x.sum(axis=1, keepdims=True)
    return np.divide(x, s, out=np.full_like(x, 1.0 / x.shape[1]), where=s > 0)


def accuracy_vs(coded: Coded, probas: np.ndarray) -> np.ndarray:
    """Each worker's expected accuracy: the mean posterior mass on the label they gave."""
    hit = probas[coded.task, coded.label]
    n = np.bincount(coded.worker, minlength=coded.n_workers)
    return np.bincount(coded.worker, weights=hit, minlength=coded.n_workers) / np.maximum(n, 1)


def softmax_rows(logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise softmax in log space; returns (probabilities, log normaliser per row)."""
    m = logp.max(axis=1, keepdims=True)
    p = np.exp(logp - m)
    s = p.sum(axis=1, keepdims=True)
    p /= s
    return p, (np.log(s) + m).ravel()
