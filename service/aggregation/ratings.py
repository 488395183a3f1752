r"""Ratings (scores on a scale): per-rater bias and scale correction, and an ordinal consensus.

Column contract (ratings): a DataFrame with columns ``worker, task, score``; one row per answer; ``score``
is numeric (a Likert level, a 0–100 slider, ...). Strings that parse as numbers are accepted.

``RaterCalibration`` fits the affine rater model

.. math:: x_{wt} = b_w + s_w \mu_t + \varepsilon_{wt}, \qquad \varepsilon_{wt} \sim N(0, \sigma_w^2),

item means :math:`\mu_t`, rater bias :math:`b_w`, scale :math:`s_w > 0` and noise :math:`\sigma_w`, by
alternating weighted least squares with Gaussian priors that pull :math:`b_w \to 0` and
:math:`s_w \to 1` (``shrinkage`` pseudo-items each, so a rater with three answers is barely corrected)
and an inverse-gamma prior on :math:`\sigma_w^2`. The gauge is fixed by centring :math:`\mu` on the mean
raw score and scaling it to the raw spread. ``scores_`` are the :math:`\mu_t` (the raters' consensus on the
original scale, with each rater's offset and stretch removed and noisy raters down-weighted), ``bias_``,
``scale_``, ``noise_`` the rater parameters, ``skills_`` :math:`1/(1+\sigma_w^2/\mathrm{var}(\mu))`
(1 = noiseless).

``OrdinalConsensus`` treats the scale as ordered categories: each task's label is the weighted median of
its answers (weights: ``RaterCalibration`` skills, or 1 with ``weighted=False``), the value that minimises
the weighted sum of absolute differences, so it is always a level somebody gave and never an average
between levels. ``probas_`` holds the weighted share of each level per task.

Preconditions: at least two distinct raters; numeric scores. Citations: the additive/affine rater model
of Paul, "Statistical models for ratings", 1981 and the "bias and scale" correction used for conference
reviews (Flach et al., "Novel tools to streamline the conference review process", KDD 2010).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from ._data import check_frame, factorize
from .errors import AggregationInputError

__all__ = ["OrdinalConsensus", "RaterCalibration", "encode_ratings"]


@dataclass(frozen=True, slots=True)
class CodedRatings:
    task: np.ndarray
    worker: np.ndarray
    score: np.ndarray
    tasks: pd.Index
    workers: pd.Index


def encode_ratings(df: Any) -> CodedRatings:
    check_frame(df, ("worker", "task", "score"), what="ratings")
    score = pd.to_numeric(df["score"], errors="coerce")
    if score.isna().any() or not np.isfinite(score.to_numpy(float)).all():
        bad = sorted(set(map(repr, df["score"][score.isna() | ~np.isfinite(score.fillna(0))])))[:5]
        raise AggregationInputError(f"score must be a number; got {', '.join(bad)}", field="score")
    t, tasks = factorize(df["task"], "task")
    w, workers = factorize(df["worker"], "worker")
    if len(workers) < 2:
        raise AggregationInputError(
            "only one rater: rater bias cannot be told apart from the items; collect ratings from two or more",
            field="worker")
    return CodedRatings(task=t, worker=w, score=score.to_numpy(float), tasks=tasks, workers=workers)


@dataclass(kw_only=True)
class RaterCalibration:
    """Affine rater model (see module docstring); ``shrinkage`` = prior strength in pseudo-items."""

    n_iter: int = 50
    tol: float = 1e-8
    shrinkage: float = 2.0

    scores_: pd.Series = field(init=False, repr=False)
    bias_: pd.Series = field(init=False, repr=False)
    scale_: pd.Series = field(init=False, repr=False)
    noise_: pd.Series = field(init=False, repr=False)
    skills_: pd.Series = field(init=False, repr=False)
    n_iter_: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.n_iter < 0 or not self.shrinkage >= 0:
            raise AggregationInputError("need n_iter >= 0 and shrinkage >= 0", field="n_iter")

    def fit(self, df: pd.DataFrame) -> Self:
        r = encode_ratings(df)
        self._fit_coded(r)
        return self

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).scores_

    def _fit_coded(self, r: CodedRatings) -> None:
        t, w, x = r.task, r.worker, r.score
        n_t, n_w = len(r.tasks), len(r.workers)
        gm, gs = x.mean(), x.std() or 1.0
        z = (x - gm) / gs  # work on the standardised scale
        cnt_t = np.bincount(t, minlength=n_t)
        mu = np.bincount(t, weights=z, minlength=n_t) / cnt_t
        b, s, var = np.zeros(n_w), np.ones(n_w), np.ones(n_w)
        lam = self.shrinkage
        self.n_iter_ = 0
        for it in range(1, self.n_iter + 1):
            # raters: ridge regression of z on mu toward (b, s) = (0, 1), per rater, in closed form
            m = mu[t]
            s0 = np.bincount(w, minlength=n_w) + lam
            s1 = np.bincount(w, weights=m, minlength=n_w)
            s2 = np.bincount(w, weights=m * m, minlength=n_w) + lam
            y0 = np.bincount(w, weights=z, minlength=n_w)
            y1 = np.bincount(w, weights=z * m, minlength=n_w) + lam  # prior s = 1
            det = s0 * s2 - s1 * s1
            b = (s2 * y0 - s1 * y1) / det
            s = np.maximum((s0 * y1 - s1 * y0) / det, 0.05)
            resid = z - b[w] - s[w] * m
            var = (np.bincount(w, weights=resid ** 2, minlength=n_w) + lam * 0.5) / (
                np.bincount(w, minlength=n_w) + lam)
            # items: weighted least squares given the raters
            prec = s[w] ** 2 / var[w]
            num = np.bincount(t, weights=s[w] * (z - b[w]) / var[w], minlength=n_t)
            new = num / np.bincount(t, weights=prec, minlength=n_t)
            new = (new - new.mean()) / (new.std() or 1.0) * (mu.std() or 1.0)  # gauge: keep mu's spread
            change = np.max(np.abs(new - mu))
            mu = new
            self.n_iter_ = it
            if change < self.tol:
                break
        self.scores_ = pd.Series(gm + gs * mu, index=r.tasks, name="score")
        self.bias_ = pd.Series(gs * b, index=r.workers, name="bias")
        self.scale_ = pd.Series(s, index=r.workers, name="scale")
        self.noise_ = pd.Series(gs * np.sqrt(var), index=r.workers, name="noise")
        v_mu = mu.var() or 1.0
        self.skills_ = pd.Series(1.0 / (1.0 + var / v_mu), index=r.workers, name="skill")


@dataclass(kw_only=True)
class OrdinalConsensus:
    """Weighted median per task over ordered levels (see module docstring)."""

    weighted: bool = True

    labels_: pd.Series = field(init=False, repr=False)
    probas_: pd.DataFrame = field(init=False, repr=False)
    skills_: pd.Series = field(init=False, repr=False)

    def fit(self, df: pd.DataFrame) -> Self:
        r = encode_ratings(df)
        if self.weighted:
            cal = RaterCalibration()
            cal._fit_coded(r)
            wts = cal.skills_.to_numpy()[r.worker]
        else:
            wts = np.ones(len(r.score))
        v, levels = factorize(pd.Series(r.score), "level")
        k, n_t = len(levels), len(r.tasks)
        mass = np.bincount(r.task * k + v, weights=wts, minlength=n_t * k).reshape(n_t, k)
        mass /= mass.sum(axis=1, keepdims=True)
        cum = np.cumsum(mass, axis=1)
        med = np.argmax(cum >= 0.5 - 1e-12, axis=1)  # lower weighted median
        self.probas_ = pd.DataFrame(mass, index=r.tasks, columns=levels)
        self.labels_ = pd.Series(levels.to_numpy()[med], index=r.tasks, name="label")
        lab = levels.to_numpy(float)[med][r.task]
        err = np.abs(r.score - lab)
        span = (levels.max() - levels.min()) or 1.0
        n = np.bincount(r.worker, minlength=len(r.workers))
        self.skills_ = pd.Series(1.0 - np.bincount(r.worker, weights=err, minlength=len(r.workers))
                                 / np.maximum(n, 1) / span, index=r.workers, name="skill")
        return self

    def fit_predict(self, df: pd.DataFrame) -> pd.Series:
        return self.fit(df).labels_
