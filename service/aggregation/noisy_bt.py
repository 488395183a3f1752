r"""Crowd Bradley–Terry: item scores plus one reliability per rater (CrowdBT).

Model: rater :math:`w` follows Bradley–Terry with probability :math:`\eta_w = \sigma(\rho_w)` and answers
the opposite otherwise,

.. math:: P(l \succ r \mid w) = \eta_w\,\sigma(\theta_l - \theta_r) + (1 - \eta_w)\,\sigma(\theta_r - \theta_l).

Ties count as half a win each way. Objective: negative log-likelihood plus ``reg``/2 · Σθ² and a
:math:`N(\rho_0, 1)` prior on :math:`\rho_w` (``rho_prior``, default 2: raters are assumed mostly
reliable), minimised jointly by L-BFGS with the analytic gradient. ``skills_`` are the :math:`\eta_w`
(0.5 = coin flipper, below 0.5 = systematically reversed).

Preconditions: the comparison graph is connected. Column contract ``worker, left, right, winner``.

Citation: X. Chen, P. N. Bennett, K. Collins-Thompson and E. Horvitz, "Pairwise ranking aggregation in a
crowdsourced setting", WSDM 2013.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from ._pairs import encode_pairs
from .errors import AggregationInputError

__all__ = ["NoisyBradleyTerry"]


@dataclass(kw_only=True)
class NoisyBradleyTerry:
    """CrowdBT scores and rater reliabilities (see module docstring)."""

    n_iter: int = 500
    tol: float = 1e-12
    reg: float = 1e-4
    rho_prior: float = 2.0

    scores_: pd.Series = field(init=False, repr=False)
    skills_: pd.Series = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.reg <= 0:
            raise AggregationInputError("reg must be > 0 (it fixes the gauge of the scores)", field="reg")

    def fit(self, df: pd.DataFrame) -> Self:
        p = encode_pairs(df)
        n, n_w, l, r, y, w = p.n_items, len(p.workers), p.left, p.right, p.outcome, p.worker
        m = len(y)

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            theta, rho = x[:n], x[n:]
            sig = expit(theta[l] - theta[r])
            eta = expit(rho)[w]
            prob = np.clip((1 - eta) + (2 * eta - 1) * sig, 1e-12, 1 - 1e-12)
            ll = np.dot(y, np.log(prob)) + np.dot(1 - y, np.log1p(-prob))
            dp = y / prob - (1 - y) / (1 - prob)
            gdiff = dp * (2 * eta - 1) * sig * (1 - sig)
            gt = np.bincount(l, weights=gdiff, minlength=n) - np.bincount(r, weights=gdiff, minlength=n)
            gr = np.bincount(w, weights=dp * (2 * sig - 1) * eta * (1 - eta), minlength=n_w)
            obj = -ll / m + 0.5 * self.reg * np.dot(theta, theta) + 0.5 * np.sum((rho - self.rho_prior) ** 2) / m
            grad = np.concatenate([-gt / m + self.reg * theta, (-gr + (rho - self.rho_prior)) / m])
            return float(obj), grad

        x0 = np.concatenate([np.zeros(n), np.full(n_w, self.rho_prior)])
        res = minimize(f, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": self.n_iter, "ftol": self.tol, "gtol": 1e-12})
        theta = res.x[:n]
        self.scores_ = pd.Series(theta - theta.mean(), index=p.items, name="score")
        self.skills_ = pd.Series(expit(res.x[n:]), index=p.workers, name="skill")
        return self

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).scores_
