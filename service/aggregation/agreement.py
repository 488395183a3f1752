r"""Chance-corrected agreement on categorical labels: Fleiss' κ, Cohen's κ per rater pair, percent agreement.

All take a ``task, worker, label`` frame (the categorical contract) and count every row.

*Percent agreement* :math:`\bar P` is the share of agreeing ordered answer pairs within a task, averaged
over tasks with at least two answers: :math:`P_t = \sum_k n_{tk}(n_{tk}-1) / (n_t(n_t-1))`. 1 means every
task was unanimous. It ignores chance: two raters flipping a fair coin agree half the time.

*Fleiss' κ* (Fleiss 1971; for unequal answers per task the per-task :math:`P_t` above, averaged over tasks
with two or more answers) is :math:`(\bar P - P_e)/(1 - P_e)` with :math:`P_e = \sum_k p_k^2` and
:math:`p_k` the share of all answers (on those tasks) that are :math:`k`. Read it like α: 1 perfect, 0 chance
level, < 0 worse than chance; Landis & Koch call .41–.60 moderate, .61–.80 substantial.

*Cohen's κ* (Cohen 1960) per pair of raters over the tasks both answered:
:math:`(p_o - p_e)/(1 - p_e)`, :math:`p_o` the share of those tasks they agree on, :math:`p_e` the agreement
expected from each rater's own label shares on them. Pairs with fewer than ``min_overlap`` shared tasks
are left out; a pair whose expected agreement is 1 (both constant, same label) gets NaN.
Cost: one row per answering pair within a task (about :math:`\sum_t n_t^2 / 2`), all ``bincount``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._data import Coded, encode
from .errors import AggregationInputError

__all__ = ["cohen_kappa_pairs", "fleiss_kappa", "percent_agreement"]


def _per_task(coded: Coded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = coded.task_class_counts()
    n = counts.sum(axis=1)
    ok = n >= 2
    if not ok.any():
        raise AggregationInputError(
            "no task has two or more answers, so agreement is undefined: collect overlapping labels", field="task")
    return counts[ok], n[ok], (counts[ok] * (counts[ok] - 1)).sum(axis=1) / (n[ok] * (n[ok] - 1))


def percent_agreement(df: pd.DataFrame) -> float:
    """Mean share of agreeing answer pairs per task (tasks with >= 2 answers); 1 = all unanimous."""
    _, _, p_t = _per_task(encode(df))
    return float(p_t.mean())


def fleiss_kappa(df: pd.DataFrame) -> float:
    """Fleiss' κ of a ``task, worker, label`` frame (see the module docstring for how to read it)."""
    counts, n, p_t = _per_task(encode(df))
    p_k = counts.sum(axis=0) / n.sum()
    p_e = float((p_k ** 2).sum())
    if p_e >= 1.0:
        raise AggregationInputError(
            "every answer on tasks with two or more answers is the same label, so κ is undefined (0/0); "
            "report percent agreement instead", field="label")
    return float((p_t.mean() - p_e) / (1.0 - p_e))


def cohen_kappa_pairs(df: pd.DataFrame, *, min_overlap: int = 5) -> pd.DataFrame:
    """Cohen's κ for every pair of raters sharing >= ``min_overlap`` tasks.

    Returns a frame with columns ``worker_a, worker_b, n, agreement, kappa`` (``worker_a < worker_b``),
    sorted by the pair. Repeated answers of one rater to one task: the first one counts.
    """
    if min_overlap < 1:
        raise AggregationInputError("min_overlap must be >= 1", field="min_overlap")
    c = encode(df)
    k, n_w = c.n_classes, c.n_workers
    key = pd.DataFrame({"t": c.task, "w": c.worker, "y": c.label}).drop_duplicates(["t", "w"])
    key = key.sort_values(["t", "w"], kind="stable")
    t, w, y = key["t"].to_numpy(), key["w"].to_numpy(), key["y"].to_numpy()
    # all pairs within each task: for each offset d, rows i and i+d in the same task
    starts = np.searchsorted(t, t, side="left")
    ends = np.searchsorted(t, t, side="right")
    max_n = int((ends - starts).max()) if len(t) else 0
    pa, pb, ya, yb = [], [], [], []
    for d in range(1, max_n):
        i = np.flatnonzero(np.arange(len(t)) + d < ends)
        pa.append(w[i]); pb.append(w[i + d]); ya.append(y[i]); yb.append(y[i + d])
    cols = ["worker_a", "worker_b", "n", "agreement", "kappa"]
    if not pa:
        return pd.DataFrame(columns=cols)
    a, b = np.concatenate(pa), np.concatenate(pb)
    la, lb = np.concatenate(ya), np.concatenate(yb)
    pair = a.astype(np.int64) * n_w + b  # a < b because rows are sorted by worker within a task
    code, uniq = pd.factorize(pair, sort=True)
    m = len(uniq)
    n = np.bincount(code, minlength=m).astype(float)
    agree = np.bincount(code, weights=(la == lb).astype(float), minlength=m)
    ma = np.bincount(code * k + la, minlength=m * k).reshape(m, k) / n[:, None]
    mb = np.bincount(code * k + lb, minlength=m * k).reshape(m, k) / n[:, None]
    pe = (ma * mb).sum(axis=1)
    po = agree / n
    kappa = np.divide(po - pe, 1.0 - pe, out=np.full(m, np.nan), where=pe < 1.0 - 1e-12)
    keep = n >= min_overlap
    out = pd.DataFrame({
        "worker_a": c.workers.to_numpy()[uniq[keep] // n_w], "worker_b": c.workers.to_numpy()[uniq[keep] % n_w],
        "n": n[keep].astype(int), "agreement": po[keep], "kappa": kappa[keep],
    })
    return out.reset_index(drop=True)
