r"""Krippendorff's α over a long ``task, worker, label`` frame, at any level of measurement.

.. math:: \alpha = 1 - \frac{D_o}{D_e}
   = 1 - (n - 1)\frac{\sum_{c,k} o_{ck}\, \delta^2_{ck}}{\sum_{c,k} n_c n_k\, \delta^2_{ck}}

with the coincidence matrix :math:`o_{ck} = \sum_u \frac{n_{uc} n_{uk} - [c=k] n_{uc}}{m_u - 1}` over units
(tasks) with :math:`m_u \ge 2` answers, :math:`n_c = \sum_k o_{ck}`, :math:`n = \sum_c n_c`, and
:math:`\delta^2` the nominal, ordinal, interval or ratio distance (Krippendorff, *Content Analysis*, 2004;
"Computing Krippendorff's Alpha-Reliability", 2011). Every row counts, repeated ``(task, worker)`` rows
included, matching the ``krippendorff`` package fed with per-task value counts.

How to read it: 1 is perfect agreement, 0 is what raters answering at random with the observed label
frequencies would reach, below 0 is systematic disagreement. Krippendorff suggests relying on data with
α ≥ .800 and drawing tentative conclusions only from .667 ≤ α < .800.

Preconditions: at least two distinct values, two raters, and one task with two answers. For ordinal
levels give ``order`` unless the labels are numbers; interval and ratio need numeric labels.

The work is one ``np.bincount`` into a dense (tasks x values) count matrix and a ``(V x T) @ (T x V)``
product: O(rows + T·V²); the nominal level needs only the matrix's row sums of squares and margins, O(T·V). ``krippendorff_alpha_from_counts`` starts from such a matrix, as the
``krippendorff`` package's ``value_counts=`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._data import check_frame, factorize
from .errors import AggregationInputError

__all__ = ["Level", "krippendorff_alpha", "krippendorff_alpha_ci", "krippendorff_alpha_from_counts",
           "value_counts_matrix"]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
_LEVELS = ("nominal", "ordinal", "interval", "ratio")


def value_counts_matrix(
    df: pd.DataFrame, *, level: Level = "nominal", order: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validated dense (tasks x values) count matrix and the value domain (numbers unless nominal).

    Built with one ``np.bincount`` over integer codes; tasks are coded in order of appearance (α does not
    depend on the order of tasks), values in sorted order (the order matters for ordinal distances) except
    at the nominal level, where α does not depend on it either. Validation rides on the factorizing: a
    missing task or label shows up as code -1, so no separate null scan of those columns is made.
    """
    if level not in _LEVELS:
        raise AggregationInputError(f"level must be one of {', '.join(_LEVELS)}; got {level!r}", field="level")
    if not isinstance(df, pd.DataFrame) or not {"task", "worker", "label"} <= set(df.columns) or len(df) == 0:
        check_frame(df, ("task", "worker", "label"), what="ratings")  # raises with the precise message
    _check_raters(df["worker"])
    t, tasks = df["task"].array.factorize()  # the column's own storage: no pandas Series overhead
    if t.min() < 0:
        _raise_missing("task", t)
    labels = df["label"]
    if order is not None:
        domain_index = pd.Index(list(order))
        v = domain_index.get_indexer(labels)
        if (v < 0).any():
            if labels.isna().any():
                _raise_missing("label", v)
            bad = sorted(set(map(repr, labels[v < 0])))[:5]
            raise AggregationInputError(f"label(s) {', '.join(bad)} are not in `order`", field="label")
        domain: np.ndarray = np.arange(len(domain_index), dtype=float)
        if level in ("interval", "ratio"):
            domain = _numeric(pd.Series(domain_index), level)
    elif level == "nominal":
        v, uniq = labels.array.factorize()
        if v.min() < 0:
            _raise_missing("label", v)
        domain = np.arange(len(uniq), dtype=float)
    else:
        if labels.hasnans:
            _raise_missing("label", np.where(labels.isna().to_numpy(), -1, 0))
        if not pd.api.types.is_numeric_dtype(labels):
            labels = pd.Series(_numeric(labels, level), index=labels.index)
        v, uniq = factorize(labels, "label")
        domain = uniq.to_numpy(float)
    n_v = len(domain)
    counts = np.bincount(t.astype(np.int64) * n_v + v, minlength=len(tasks) * n_v).reshape(len(tasks), n_v)
    return counts.astype(float), domain


def _check_raters(workers: pd.Series) -> None:
    """At least two distinct, non-missing raters (the first and last rows usually settle it at once)."""
    values = workers.array
    missing = values.isna()
    if missing.any():
        raise AggregationInputError(f"column 'worker' has {int(missing.sum())} missing value(s); drop or fill them",
                                    field="worker")
    first = values[0]
    if values[-1] != first:
        return
    if not (workers != first).any():  # vectorised in the column's own storage; no object copy
        raise AggregationInputError("agreement needs at least two distinct raters (column 'worker')", field="worker")


def _raise_missing(column: str, codes: np.ndarray) -> None:
    n = int((codes < 0).sum())
    raise AggregationInputError(f"column {column!r} has {n} missing value(s); drop or fill them", field=column)


def _numeric(labels: pd.Series, level: str) -> np.ndarray:
    out = pd.to_numeric(labels, errors="coerce")
    if out.isna().any():
        bad = sorted(set(map(repr, labels[out.isna()])))[:5]
        raise AggregationInputError(
            f"{level} α needs numeric labels; {', '.join(bad)} are not numbers (or pass `order` for ordinal)",
            field="label",
        )
    return out.to_numpy(float)


def _distance(level: str, domain: np.ndarray, n_v: np.ndarray) -> np.ndarray:
    if level == "nominal":
        return 1.0 - np.eye(len(domain))
    if level == "interval":
        return (domain[:, None] - domain[None, :]) ** 2
    if level == "ratio":
        s = domain[:, None] + domain[None, :]
        diff = domain[:, None] - domain[None, :]
        return np.divide(diff, s, out=np.zeros_like(s), where=s != 0) ** 2
    cum = np.concatenate([[0.0], np.cumsum(n_v)])  # ordinal
    i = np.arange(len(domain))
    lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
    between = cum[hi + 1] - cum[lo]
    return (between - (n_v[:, None] + n_v[None, :]) / 2.0) ** 2


def _alpha_from_counts(counts: np.ndarray, domain: np.ndarray, level: str) -> float:
    m = counts.sum(axis=1)
    paired = m >= 2
    if not paired.any():
        raise AggregationInputError(
            "no task has two or more answers, so agreement is undefined: collect overlapping labels", field="task"
        )
    if len(domain) <= 1:
        raise AggregationInputError("only one distinct label: α needs at least two values", field="label")
    c = counts[paired] if not paired.all() else counts
    if level == "nominal":
        return _nominal_alpha(c, m[paired])
    scaled = c / (m[paired] - 1.0)[:, None]
    o = c.T @ scaled  # coincidences: sum_u n_uc n_uk / (m_u - 1) ...
    o[np.diag_indices_from(o)] -= scaled.sum(axis=0)  # ... minus the pairs of an answer with itself
    n_v = o.sum(axis=0)
    n = n_v.sum()
    e = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1.0)
    d = _distance(level, domain, n_v)
    expected = (e * d).sum()
    if expected <= 0:
        _raise_no_variation()
    return float(1.0 - (o * d).sum() / expected)


def _nominal_alpha(c: np.ndarray, m: np.ndarray) -> float:
    r"""Nominal α without the (V x V) coincidence matrix: with :math:`\delta = 1 - [c = k]` only its trace
    and margins are needed, :math:`\sum_{ck} o_{ck} = n`, :math:`n_c = \sum_u n_{uc}`,
    :math:`\mathrm{tr}\,o = \sum_u (\sum_c n_{uc}^2 - m_u)/(m_u - 1)`, so
    :math:`\alpha = 1 - (n - 1)(n - \mathrm{tr}\,o) / (n^2 - \sum_c n_c^2)`. O(T·V)."""
    n_v = c.sum(axis=0)
    n = float(m.sum())
    agree = float(((np.einsum("tv,tv->t", c, c) - m) / (m - 1.0)).sum())
    expected = n * n - float(n_v @ n_v)
    if expected <= 0:
        _raise_no_variation()
    return float(1.0 - (n - 1.0) * (n - agree) / expected)


def _raise_no_variation() -> None:
    raise AggregationInputError(
        "all answers on tasks with two or more answers share one value, so expected disagreement is 0 and α is "
        "undefined (0/0); report percent agreement instead",
        field="label",
    )


def krippendorff_alpha_from_counts(
    value_counts: Any, level: Level = "nominal", *, values: Sequence[float] | None = None
) -> float:
    """α from a (tasks x values) matrix of answer counts, the ``value_counts=`` input of the ``krippendorff``
    package. ``values`` are the numeric values of the columns (default 0, 1, 2, ...; they matter for
    interval and ratio levels; for ordinal only their order, which is the column order, matters)."""
    if level not in _LEVELS:
        raise AggregationInputError(f"level must be one of {', '.join(_LEVELS)}; got {level!r}", field="level")
    counts = np.asarray(value_counts, dtype=float)
    if counts.ndim != 2 or (counts < 0).any() or not np.isfinite(counts).all():
        raise AggregationInputError("value_counts must be a 2-D array of non-negative counts", field="value_counts")
    domain = np.arange(counts.shape[1], dtype=float) if values is None else np.asarray(values, dtype=float)
    if len(domain) != counts.shape[1]:
        raise AggregationInputError("values must give one number per column of value_counts", field="values")
    return _alpha_from_counts(counts, domain, level)


def krippendorff_alpha(
    df: pd.DataFrame, level: Level = "nominal", *, order: Sequence[Any] | None = None
) -> float:
    """Krippendorff's α of a ``task, worker, label`` frame (see the module docstring for how to read it).

    ``order`` lists the labels from lowest to highest for ordinal data with non-numeric labels.
    """
    counts, domain = value_counts_matrix(df, level=level, order=order)
    return _alpha_from_counts(counts, domain, level)


def krippendorff_alpha_ci(
    df: pd.DataFrame,
    level: Level = "nominal",
    *,
    order: Sequence[Any] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """α with a percentile bootstrap interval over tasks: ``(alpha, low, high)``.

    Tasks are resampled with replacement ``n_boot`` times with ``numpy.random.default_rng(seed)``.
    """
    if n_boot < 1 or not 0 < confidence < 1:
        raise AggregationInputError("need n_boot >= 1 and 0 < confidence < 1", field="n_boot")
    counts, domain = value_counts_matrix(df, level=level, order=order)
    point = _alpha_from_counts(counts, domain, level)
    rng = np.random.default_rng(seed)
    n_tasks = counts.shape[0]
    stats = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, n_tasks, n_tasks)
        try:
            stats[b] = _alpha_from_counts(counts[pick], domain, level)
        except AggregationInputError:
            stats[b] = np.nan
    lo, hi = np.nanquantile(stats, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return point, float(lo), float(hi)
