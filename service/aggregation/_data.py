"""Input validation and integer coding shared by every method (private).

Every public entry point turns its DataFrame into integer codes here, once, and the numerics work on
those. Codes follow the *sorted* order of the distinct values (``pd.factorize(sort=True)``), so outputs
(``probas_`` columns, task and worker indexes) do not depend on row order. Ties between equally probable
labels are broken by ``Coded.tie_order``: the label seen first in the rows wins (crowd-kit's rule, whose
``idxmax`` runs over columns in first-seen order), unless ``classes`` declares the order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import AggregationInputError

__all__ = ["Coded", "check_frame", "encode", "encode_gold", "factorize", "first_seen_order"]


def check_frame(df: Any, columns: Sequence[str], *, what: str = "labels") -> pd.DataFrame:
    """Reject anything that is not a non-empty DataFrame holding ``columns`` without nulls."""
    if not isinstance(df, pd.DataFrame):
        raise AggregationInputError(
            f"expected a pandas DataFrame with columns {', '.join(columns)}; got {type(df).__name__}"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise AggregationInputError(
            f"missing column(s) {', '.join(missing)}: {what} need columns {', '.join(columns)} "
            f"(got {', '.join(map(str, df.columns)) or 'none'})",
            field=missing[0],
        )
    if len(df) == 0:
        raise AggregationInputError(f"no rows: pass at least one row of {what}", field=columns[0])
    for c in columns:
        nulls = int(df[c].isna().sum())
        if nulls:
            raise AggregationInputError(f"column {c!r} has {nulls} missing value(s); drop or fill them", field=c)
    return df


def factorize(values: pd.Series, name: str) -> tuple[np.ndarray, pd.Index]:
    """Sorted integer codes and the index of distinct values (named ``name``)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        if cat.cat.ordered or list(cat.cat.categories) == sorted(cat.cat.categories):
            return cat.cat.codes.to_numpy(np.int64), pd.Index(cat.cat.categories, name=name)
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError as exc:
        raise AggregationInputError(
            f"column {name!r} mixes types that cannot be ordered; cast it to str", field=name
        ) from exc
    return codes.astype(np.int64, copy=False), pd.Index(uniques, name=name)


@dataclass(frozen=True, slots=True)
class Coded:
    """A ``task, worker, label`` frame as three integer arrays plus the value indexes."""

    task: np.ndarray
    worker: np.ndarray
    label: np.ndarray
    tasks: pd.Index
    workers: pd.Index
    classes: pd.Index
    tie_order: np.ndarray | None = None  # class codes, most preferred first; None: sorted order

    def tie_rank(self) -> np.ndarray:
        """Class codes in tie-breaking order (see module docstring)."""
        return np.arange(self.n_classes) if self.tie_order is None else self.tie_order

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def task_class_counts(self) -> np.ndarray:
        """Dense (tasks, classes) matrix of how many rows gave each label to each task."""
        k = self.n_classes
        return np.bincount(self.task * k + self.label, minlength=self.n_tasks * k).reshape(-1, k).astype(float)

    def design(self) -> sparse.csr_matrix:
        """Sparse (tasks, workers*classes) count matrix: row t, column w*K+y counts rows (t, w, y)."""
        k = self.n_classes
        data = np.ones(len(self.task), dtype=np.float64)
        return sparse.csr_matrix(
            (data, (self.task, self.worker * k + self.label)), shape=(self.n_tasks, self.n_workers * k)
        )


def _declared(classes: Iterable[Any] | None, observed: pd.Index) -> pd.Index | None:
    if classes is None:
        return None
    declared = pd.Index(list(dict.fromkeys(classes)), name="label")
    if len(declared) == 0:
        raise AggregationInputError("`classes` is empty: declare at least two labels or pass None", field="classes")
    outside = observed.difference(declared)
    if len(outside):
        shown = ", ".join(map(repr, list(outside[:5])))
        raise AggregationInputError(
            f"{len(outside)} label(s) outside the declared set {list(declared)}: {shown}; "
            "fix the rows or add the labels to `classes`",
            field="label",
        )
    return declared


def encode(
    df: Any, *, classes: Sequence[Any] | None = None, min_workers: int = 2, what: str = "labels"
) -> Coded:
    """Validate a ``task, worker, label`` frame and code it.

    ``classes`` declares the label set (and its order, which then decides ties); labels outside it raise.
    Fewer than ``min_workers`` distinct workers raise, since rater quality cannot be told apart then.
    """
    check_frame(df, ("task", "worker", "label"), what=what)
    t, tasks = factorize(df["task"], "task")
    w, workers = factorize(df["worker"], "worker")
    y, observed = factorize(df["label"], "label")
    if len(workers) < min_workers:
        raise AggregationInputError(
            f"only {len(workers)} worker(s) labelled these tasks; this method needs at least {min_workers} "
            "distinct raters to tell rater quality apart (use the raw labels, or collect more raters)",
            field="worker",
        )
    declared = _declared(classes, observed)
    if declared is not None:
        y = declared.get_indexer(observed)[y]
        return Coded(task=t, worker=w, label=y, tasks=tasks, workers=workers, classes=declared)
    return Coded(task=t, worker=w, label=y, tasks=tasks, workers=workers, classes=observed,
                 tie_order=first_seen_order(y, len(observed)))


def first_seen_order(codes: np.ndarray, n: int) -> np.ndarray:
    """The codes ``0..n-1`` ordered by where each first occurs in ``codes`` (absent ones last)."""
    seen = pd.unique(codes) if len(codes) else np.empty(0, np.int64)
    if len(seen) == n:
        return np.asarray(seen, dtype=np.int64)
    rest = np.setdiff1d(np.arange(n), seen)
    return np.concatenate([np.asarray(seen, dtype=np.int64), rest])


def encode_gold(gold: Any, coded: Coded) -> tuple[np.ndarray, np.ndarray]:
    """Gold ``Series`` (task -> label) as (task codes, class codes); tasks absent from the data are dropped."""
    if gold is None:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if isinstance(gold, pd.DataFrame) and {"task", "label"} <= set(gold.columns):
        gold = gold.set_index("task")["label"]
    if not isinstance(gold, pd.Series):
        raise AggregationInputError(
            "gold must be a pandas Series indexed by task with label values (or a task,label frame)", field="gold"
        )
    gold = gold.dropna()
    if gold.index.has_duplicates:
        raise AggregationInputError("gold has duplicate tasks: keep one label per task", field="gold")
    ti = coded.tasks.get_indexer(gold.index)
    keep = ti >= 0
    ci = coded.classes.get_indexer(pd.Index(gold.to_numpy()[keep]))
    if (ci < 0).any():
        bad = sorted(set(map(repr, gold.to_numpy()[keep][ci < 0])))[:5]
        raise AggregationInputError(
            f"gold label(s) {', '.join(bad)} never occur in the answers; declare them in `classes`", field="gold"
        )
    return ti[keep].astype(np.int64), ci.astype(np.int64)
