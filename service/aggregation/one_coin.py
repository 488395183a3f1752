r"""One-coin Dawid–Skene: each rater is right with one probability, wrong uniformly otherwise.

Model: :math:`P(y \mid z_t = c, w) = s_w` if :math:`y = c`, else :math:`(1 - s_w)/(K - 1)`; classes
:math:`z_t \sim \mathrm{Cat}(p)`. Objective: the marginal log-likelihood, maximised by EM from the
majority-vote posterior. E-step: :math:`q_{tc} \propto p_c \prod P(y \mid c, w)` (two ``bincount`` calls
in log space); M-step: :math:`s_w` is the mean of :math:`q_{t,y}` over the rater's answers, clipped to
[1e-10, 1 - 1e-10], and :math:`p = \bar q`. Gold tasks are pinned to their class at every step. Stops when
the mean log-likelihood per answer gains less than ``tol`` or after ``n_iter`` rounds.

Preconditions: at least two distinct raters. It assumes errors spread evenly over the wrong classes and
can collapse when they do not (crowd-kit measured .258 on s4_Relevance).

Citation: Y. Zhang, X. Chen, D. Zhou and M. I. Jordan, "Spectral methods meet EM: a provably optimal
algorithm for crowdsourcing", JMLR 17 (2016).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ._data import Coded
from .base import CategoricalAggregator, accuracy_vs, pin_gold, row_normalize, softmax_rows
from .errors import AggregationInputError
from .majority_vote import vote_shares

__all__ = ["OneCoinDawidSkene"]

EPS = 1e-10


@dataclass(kw_only=True)
class OneCoinDawidSkene(CategoricalAggregator):
    """One-coin Dawid–Skene EM (see module docstring)."""

    name: ClassVar[str] = "onecoin_ds"
    n_iter: int = 100
    tol: float = 1e-6

    priors_: np.ndarray = field(init=False, repr=False)
    loss_history_: list[float] = field(init=False, repr=False)
    n_iter_: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_iter < 0 or not self.tol >= 0:
            raise AggregationInputError("need n_iter >= 0 and tol >= 0", field="n_iter")

    def _fit_coded(self, coded: Coded, gold_t: np.ndarray, gold_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, n = coded.n_classes, len(coded.task)
        q = pin_gold(row_normalize(vote_shares(coded)), gold_t, gold_y)
        self.loss_history_, self.n_iter_ = [], 0
        if k < 2:
            self.priors_ = np.ones(1)
            return q, np.ones(coded.n_workers)
        tk_idx = coded.task * k + coded.label
        for it in range(1, self.n_iter + 1):
            s = np.clip(accuracy_vs(coded, q), EPS, 1 - EPS)
            wrong = np.log((1 - s) / (k - 1))
            right = np.log(s) - wrong
            logp = np.bincount(tk_idx, weights=right[coded.worker], minlength=coded.n_tasks * k).reshape(-1, k)
            logp += np.bincount(coded.task, weights=wrong[coded.worker], minlength=coded.n_tasks)[:, None]
            logp += np.log(np.maximum(q.mean(axis=0), EPS))
            q, lognorm = softmax_rows(logp)
            pin_gold(q, gold_t, gold_y)
            self.loss_history_.append(float(lognorm.sum()) / n)
            self.n_iter_ = it
            if it > 1 and self.loss_history_[-1] - self.loss_history_[-2] < self.tol:
                break
        self.priors_ = q.mean(axis=0)
        return q, accuracy_vs(coded, q)
