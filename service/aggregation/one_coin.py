r"""One-coin Dawid–Skene: each rater is right with one probability, wrong uniformly otherwise.

Model: :math:`P(y \mid z_t = c, w) = s_w` if :math:`y = c`, else :math:`(1 - s_w)/(K - 1)`; classes
:math:`z_t \sim \mathrm{Cat}(p)`. Objective: the marginal log-likelihood, maximised by EM from the
majority-vote posterior. E-step: :math:`q_{tc} \propto p_c \prod P(y \mid c, w)` (two ``bincount`` calls
in log space); M-step: :math:`s_w` is the mean of :math:`q_{t,y}` over the rater's answers, and
:math:`p = \bar q`; both answer probabilities are clipped to [1e-10, 1 - 1e-10]. Gold tasks are pinned to
their class at every step. Stops as crowd-kit does: once the ELBO per answer
(``dawid_skene.evidence_lower_bound``, with the new parameters) gains less than ``tol`` (1e-5), or after
``n_iter`` rounds.

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
from .dawid_skene import evidence_lower_bound
from .majority_vote import vote_shares

__all__ = ["OneCoinDawidSkene"]

EPS = 1e-10


@dataclass(kw_only=True)
class OneCoinDawidSkene(CategoricalAggregator):
    """One-coin Dawid–Skene EM (see module docstring)."""

    name: ClassVar[str] = "onecoin_ds"
    n_iter: int = 100
    tol: float = 1e-5

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
        answers_per_task = np.bincount(coded.task, minlength=coded.n_tasks).astype(float)

        def params(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """M-step: per-task answer log-likelihoods (T, K) and the log class prior."""
            s = accuracy_vs(coded, q)
            right = np.log(np.clip(s, EPS, 1 - EPS))
            wrong = np.log(np.clip((1 - s) / (k - 1), EPS, 1 - EPS))
            ll = np.bincount(tk_idx, weights=(right - wrong)[coded.worker], minlength=coded.n_tasks * k)
            all_wrong = np.bincount(coded.task, weights=wrong[coded.worker], minlength=coded.n_tasks)
            ll = ll.reshape(-1, k) + all_wrong[:, None]
            return ll, np.log(np.maximum(q.mean(axis=0), EPS))

        answer_ll, log_prior = params(q)
        best = -np.inf
        for it in range(1, self.n_iter + 1):
            q, _ = softmax_rows(answer_ll + log_prior)
            pin_gold(q, gold_t, gold_y)
            answer_ll, log_prior = params(q)
            self.loss_history_.append(evidence_lower_bound(q, answer_ll, log_prior, answers_per_task) / n)
            self.n_iter_ = it
            if self.loss_history_[-1] - best < self.tol:
                break
            best = self.loss_history_[-1]
        self.priors_ = q.mean(axis=0)
        return q, accuracy_vs(coded, q)
