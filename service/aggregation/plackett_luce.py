r"""Plackett–Luce worths fitted by Hunter's minorise–maximise (MM) algorithm, all tasks at once.

Model: item :math:`i` has worth :math:`\gamma_i > 0`; a ranking :math:`i_1 \succ \dots \succ i_m` is built
by picking the best of the remaining items with probability proportional to worth,

.. math:: P = \prod_{r=1}^{m-1} \frac{\gamma_{i_r}}{\sum_{s=r}^{m} \gamma_{i_s}}.

Objective: the log-likelihood plus a Gamma(``1 + prior``, ``prior``) prior on each worth (Caron & Doucet,
2012), which keeps worths finite for items that are never picked (always last) or always picked. MM update

.. math:: \gamma_i \leftarrow \frac{W_i + a - 1}{b + \sum_j \sum_{r \le \min(p_{ij}, m_j - 1)}
          \big(\sum_{s \ge r} \gamma_{j(s)}\big)^{-1}}

with :math:`W_i` the number of stages that item :math:`i` wins; every sum is a ``bincount`` or a cumulative
sum over the flattened rankings. Worths are rescaled to mean 1 per task after each step. Stops when the
largest relative change is below ``tol`` or after ``n_iter`` rounds. ``scores_`` are
:math:`\log \gamma`.

Preconditions: the ranking contract (``service.aggregation.rankings``). Without the prior (``prior=0``)
the MLE exists only when, per task, every split of the items has a ranking putting an item of one side
above one of the other (Hunter's assumption 1).

Citations: D. R. Hunter, "MM algorithms for generalized Bradley–Terry models", Annals of Statistics 32(1),
2004; F. Caron and A. Doucet, "Efficient Bayesian inference for generalized Bradley–Terry models", JCGS
21(1), 2012.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import AggregationInputError
from .rankings import RankingAggregator, Rankings

__all__ = ["PlackettLuce"]


@dataclass(kw_only=True)
class PlackettLuce(RankingAggregator):
    """Plackett–Luce MM (see module docstring)."""

    n_iter: int = 500
    tol: float = 1e-8
    prior: float = 0.1

    worths_: np.ndarray = field(init=False, repr=False)
    n_iter_: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_iter < 0 or not self.tol >= 0 or not self.prior >= 0:
            raise AggregationInputError("need n_iter >= 0, tol >= 0 and prior >= 0", field="n_iter")

    def _scores(self, r: Rankings) -> np.ndarray:
        n = r.n_items
        stage = r.pos < r.length - 1  # positions that are a choice stage (not the last item)
        wins = np.bincount(r.item, weights=stage.astype(float), minlength=n)
        starts = np.flatnonzero(r.pos == 0)
        gamma = np.ones(n)
        self.n_iter_ = 0
        for it in range(1, self.n_iter + 1):
            g = gamma[r.item]
            csum = np.cumsum(g)
            before = csum - g - np.repeat(csum[starts] - g[starts], np.diff(np.append(starts, len(g))))
            total = np.repeat(np.bincount(r.rank_id, weights=g), np.diff(np.append(starts, len(g))))
            inv = np.where(stage, 1.0 / (total - before), 0.0)
            cinv = np.cumsum(inv)
            cinv -= np.repeat(cinv[starts] - inv[starts], np.diff(np.append(starts, len(g))))
            denom = np.bincount(r.item, weights=cinv, minlength=n)
            new = (wins + self.prior) / (denom + self.prior)
            new = np.where(new > 0, new, 1e-300)
            mean = np.bincount(r.item_task, weights=new) / np.bincount(r.item_task)
            new /= mean[r.item_task]
            change = np.max(np.abs(new - gamma) / gamma)
            gamma = new
            self.n_iter_ = it
            if change < self.tol:
                break
        self.worths_ = gamma
        return np.log(gamma)
