r"""Method registry, ``fit_method`` and gold-free automatic selection.

Auto-selection scores each candidate by the **held-out likelihood of rater answers**: a seeded
``holdout`` fraction of answers (only from tasks that keep at least two other answers) is hidden, each
candidate is fitted on the rest, and every hidden answer :math:`(t, w, y)` is scored as

.. math:: \log \sum_c q_{tc}\, \hat\pi^w_{y c},

where :math:`q_t` is the candidate's posterior for the task and :math:`\hat\pi^w` the rater's confusion
matrix re-estimated from the candidate's posteriors on the training answers with add-one smoothing
(raters with no training answers use the pooled matrix). The same answer model for every candidate makes
the score compare what the methods output, the posteriors. The winner is refitted on all rows; its
``params`` record ``chosen``, ``reason`` and every candidate's mean held-out log-likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ._data import encode
from .base import AggregationResult, CategoricalAggregator
from .dawid_skene import DawidSkene
from .errors import AggregationInputError
from .glad import GLAD
from .mace import MACE
from .majority_vote import MajorityVote
from .one_coin import OneCoinDawidSkene
from .wawa import Wawa

__all__ = ["AUTO_CANDIDATES", "METHODS", "fit_method", "select_method"]

METHODS: Mapping[str, type[CategoricalAggregator]] = MappingProxyType({
    "mv": MajorityVote,
    "wawa": Wawa,
    "ds": DawidSkene,
    "onecoin_ds": OneCoinDawidSkene,
    "glad": GLAD,
    "mace": MACE,
})
AUTO_CANDIDATES: tuple[str, ...] = ("mv", "wawa", "ds", "onecoin_ds", "mace")  # GLAD is slow: opt in


def _heldout_split(df: pd.DataFrame, holdout: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random(len(df)) < holdout
    sizes = df.groupby("task", sort=False)["task"].transform("size").to_numpy()
    held_per_task = pd.Series(mask).groupby(df["task"].to_numpy()).transform("sum").to_numpy()
    return mask & (sizes - held_per_task >= 2)


def _answer_loglik(train: pd.DataFrame, probas: pd.DataFrame, test: pd.DataFrame) -> float:
    classes = probas.columns
    k = len(classes)
    tr = encode(train, classes=list(classes), min_workers=1)
    q = probas.reindex(tr.tasks).to_numpy(float)
    counts = np.zeros((tr.n_workers * k, k))
    np.add.at(counts, tr.worker * k + tr.label, q[tr.task])
    counts = counts.reshape(tr.n_workers, k, k)
    pooled = counts.sum(axis=0) + 1.0
    pooled /= pooled.sum(axis=0, keepdims=True)
    pi = counts + 1.0
    pi /= pi.sum(axis=1, keepdims=True)
    wi = tr.workers.get_indexer(test["worker"])
    yi = classes.get_indexer(test["label"])
    qt = probas.reindex(test["task"]).to_numpy(float)
    rows = np.where(wi[:, None] >= 0, pi[np.maximum(wi, 0), np.maximum(yi, 0)], pooled[np.maximum(yi, 0)])
    like = (qt * rows).sum(axis=1)
    return float(np.mean(np.log(np.maximum(like, 1e-300))))


def select_method(
    df: pd.DataFrame,
    *,
    candidates: Sequence[str] = AUTO_CANDIDATES,
    holdout: float = 0.1,
    seed: int = 0,
    gold: pd.Series | None = None,
) -> tuple[str, dict[str, float], str]:
    """Pick a method without gold: ``(name, {name: mean held-out log-likelihood}, reason)``."""
    unknown = [c for c in candidates if c not in METHODS]
    if unknown or not candidates:
        raise AggregationInputError(f"unknown candidate(s) {unknown}; choose from {sorted(METHODS)}", field="method")
    encode(df)  # validate once, with the full-data message
    mask = _heldout_split(df, holdout, seed)
    if mask.sum() == 0:
        return candidates[0], {}, "too few overlapping answers to hold any out; kept the first candidate"
    train, test = df.loc[~mask], df.loc[mask]
    scores = {}
    for name in candidates:
        model = METHODS[name]().fit(train, gold=gold)
        scores[name] = _answer_loglik(train, model.probas_, test)
    best = max(candidates, key=lambda c: (scores[c], -candidates.index(c)))
    ranked = sorted(scores, key=scores.get, reverse=True)
    runner = ranked[1] if len(ranked) > 1 else best
    reason = (
        f"highest held-out answer log-likelihood on {int(mask.sum())} hidden answers "
        f"({scores[best]:.4f} per answer vs {scores[runner]:.4f} for {runner})"
    )
    return best, scores, reason


def fit_method(
    method: str, df: pd.DataFrame, gold: pd.Series | None = None, **params: Any
) -> AggregationResult:
    """Fit one registered method (or ``"auto"``) and return an ``AggregationResult``.

    ``params`` go to the method's constructor; for ``"auto"`` they may hold ``candidates``, ``holdout``
    and ``seed`` for ``select_method``.
    """
    if method == "auto":
        chosen, scores, reason = select_method(df, gold=gold, **params)
        res = METHODS[chosen]().fit(df, gold=gold).result()
        return AggregationResult(
            method=chosen, labels=res.labels, probas=res.probas, skills=res.skills,
            params={**res.params, "selected_by": "auto", "chosen": chosen, "reason": reason, "scores": scores},
        )
    if method not in METHODS:
        raise AggregationInputError(f"unknown method {method!r}; choose from {sorted(METHODS)} or 'auto'", field="method")
    try:
        model = METHODS[method](**params)
    except TypeError as exc:
        raise AggregationInputError(f"bad parameter for {method!r}: {exc}", field="params") from exc
    return model.fit(df, gold=gold).result()
