r"""Bradley–Terry scores from pairwise comparisons, with ties (Davidson's model).

Model: item :math:`i` has score :math:`\theta_i`; with :math:`d = (\theta_l - \theta_r)/2` and tie
parameter :math:`\nu = e^{\eta} \ge 0`,

.. math:: P(l \succ r) = \frac{e^{d}}{e^{d} + e^{-d} + \nu},\quad
          P(r \succ l) = \frac{e^{-d}}{\cdot},\quad P(l = r) = \frac{\nu}{\cdot}.

Without ties in the data :math:`\nu = 0` and this is plain Bradley–Terry,
:math:`P(l \succ r) = \sigma(\theta_l - \theta_r)`. Objective: the negative log-likelihood plus
``reg``/2 · Σθ² (fixes the additive gauge and keeps scores finite for items that never lose), minimised
by L-BFGS with the analytic gradient (``bincount`` over the comparisons). ``scores_`` are centred θ.

Preconditions: the comparison graph is connected (otherwise ``AggregationInputError``). Column contract
``worker, left, right, winner`` (``winner`` = left | right | tie | the winning item's id).

Citations: R. A. Bradley and M. E. Terry, Biometrika 39 (1952); R. R. Davidson, "On extending the
Bradley–Terry model to accommodate ties in paired comparison experiments", JASA 65 (1970).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ._pairs import Pairs, encode_pairs
from .errors import AggregationInputError

__all__ = ["BradleyTerry"]


@dataclass(kw_only=True)
class BradleyTerry:
    """Bradley–Terry / Davidson scores (see module docstring)."""

    n_iter: int = 500
    tol: float = 1e-12
    reg: float = 1e-4
    ties: bool | None = None  # None: fit the tie parameter only if the data hold ties

    scores_: pd.Series = field(init=False, repr=False)
    tie_param_: float = field(init=False, repr=False)
    loss_: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.reg <= 0:
            raise AggregationInputError("reg must be > 0 (it fixes the gauge of the scores)", field="reg")

    def fit(self, df: pd.DataFrame) -> Self:
        pairs = encode_pairs(df)
        theta, eta, loss = self._fit_pairs(pairs)
        self.scores_ = pd.Series(theta - theta.mean(), index=pairs.items, name="score")
        self.tie_param_ = float(np.exp(eta))
        self.loss_ = loss
        return self

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).scores_

    def _fit_pairs(self, p: Pairs) -> tuple[np.ndarray, float, float]:
        n, l, r, y = p.n_items, p.left, p.right, p.outcome
        s = np.where(y == 1.0, 1.0, np.where(y == 0.0, -1.0, 0.0))
        is_tie = (y == 0.5).astype(float)
        use_ties = bool(is_tie.any()) if self.ties is None else self.ties
        m = len(y)

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            theta, eta = x[:n], (x[n] if use_ties else -np.inf)
            d = 0.5 * (theta[l] - theta[r])
            ad = np.abs(d)
            e2 = np.exp(-2 * ad)  # stable: log(e^d + e^-d + nu) = |d| + log(1 + e^{-2|d|} + nu e^{-|d|})
            nu_t = np.exp(eta - ad) if use_ties else 0.0
            z = 1 + e2 + nu_t
            log_d = ad + np.log(z)
            diff = np.sign(d) * (1 - e2) / z  # P(l) - P(r)
            ll = np.dot(s, d) - log_d.sum() + (eta * is_tie.sum() if use_ties else 0.0)
            gd = s - diff
            g = 0.5 * (np.bincount(l, weights=gd, minlength=n) - np.bincount(r, weights=gd, minlength=n))
            obj = -ll / m + 0.5 * self.reg * np.dot(theta, theta)
            grad = -g / m + self.reg * theta
            if use_ties:
                pt = nu_t / z
                return obj, np.append(grad, -(is_tie.sum() - pt.sum()) / m)
            return obj, grad

        x0 = np.zeros(n + (1 if use_ties else 0))
        if use_ties:
            x0[n] = np.log(max(is_tie.mean(), 1e-3))
        res = minimize(f, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": self.n_iter, "ftol": self.tol, "gtol": 1e-12})
        eta = float(res.x[n]) if use_ties else -np.inf
        return res.x[:n], eta, float(res.fun)
