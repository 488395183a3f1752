r"""Nominal agreement for every group of a frame at once: Krippendorff's α, Fleiss' κ and percent agreement
per vendor, per batch, per anything.

The per-group answers equal ``krippendorff_alpha(part, level="nominal")``, ``fleiss_kappa(part)`` and
``percent_agreement(part)`` on each ``part`` of ``df.groupby(by)`` (to float rounding; a test holds them
together), with ``NaN`` where those raise (fewer than two raters, no task with two answers, one value only).

Why not loop over the groups: a reconciliation audits every batch of a campaign. At 100k items x 5 raters
in 200 batches the loop spent 8.4 s of a 14 s reconciliation in per-group validation and factorizing
(cProfile, three metrics x 200 groups, each re-coding its slice); here the whole frame is coded once and every
sum is one ``np.bincount`` over (group, task) units: O(rows + units x values).

All three metrics start from the same per-unit counts :math:`n_{uv}` (unit = a task within a group),
:math:`m_u = \sum_v n_{uv}`, over units with :math:`m_u \ge 2`:

- percent agreement :math:`\bar P_g` = mean over the group's units of
  :math:`\sum_v n_{uv}(n_{uv}-1) / (m_u(m_u-1))`;
- Fleiss' κ = :math:`(\bar P_g - P_e)/(1 - P_e)`, :math:`P_e = \sum_v p_v^2`, :math:`p_v` the group's share of
  answers :math:`v`;
- nominal α = :math:`1 - (n-1)(n - \mathrm{tr}\,o)/(n^2 - \sum_v n_v^2)` (see ``krippendorff._nominal_alpha``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._data import check_frame

__all__ = ["agreement_by"]

COLUMNS = ["n", "raters", "krippendorff_alpha", "fleiss_kappa", "percent_agreement"]


def agreement_by(df: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per value of ``df[by]`` (sorted): ``n`` rows, distinct ``raters``, nominal
    ``krippendorff_alpha``, ``fleiss_kappa`` and ``percent_agreement`` (NaN where undefined)."""
    check_frame(df, ("task", "worker", "label", by), what="ratings")
    g, groups = pd.factorize(df[by], sort=True)
    n_g = len(groups)
    t, _ = pd.factorize(df["task"])
    v, values = pd.factorize(df["label"])
    w, _ = pd.factorize(df["worker"])
    k = len(values)
    rows = np.bincount(g, minlength=n_g)
    raters = _distinct_per_group(g, w, n_g)
    unit, unit_keys = pd.factorize(g.astype(np.int64) * (int(t.max()) + 1) + t)
    n_units = len(unit_keys)
    counts = np.bincount(unit * k + v, minlength=n_units * k).reshape(n_units, k).astype(float)
    unit_group = np.zeros(n_units, dtype=np.int64)
    unit_group[unit] = g
    m = counts.sum(axis=1)
    paired = m >= 2
    c, mu, ug = counts[paired], m[paired], unit_group[paired]
    sq = np.einsum("uv,uv->u", c, c)
    units = np.bincount(ug, minlength=n_g).astype(float)
    n = np.bincount(ug, weights=mu, minlength=n_g)
    n_v = np.zeros((n_g, k))
    np.add.at(n_v, ug, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t = np.bincount(ug, weights=(sq - mu) / (mu * (mu - 1.0)), minlength=n_g) / units
        trace = np.bincount(ug, weights=(sq - mu) / (mu - 1.0), minlength=n_g)
        expected = n * n - (n_v * n_v).sum(axis=1)
        alpha = np.where(expected > 0, 1.0 - (n - 1.0) * (n - trace) / expected, np.nan)
        p_e = ((n_v / n[:, None]) ** 2).sum(axis=1)
        kappa = np.where(p_e < 1.0, (p_t - p_e) / (1.0 - p_e), np.nan)
    defined = (units > 0) & (raters >= 2)
    return pd.DataFrame({
        "n": rows, "raters": raters,
        "krippendorff_alpha": np.where(defined, alpha, np.nan),
        "fleiss_kappa": np.where(defined, kappa, np.nan),
        "percent_agreement": np.where(defined, p_t, np.nan),
    }, index=pd.Index(groups, name=by), columns=COLUMNS)


def _distinct_per_group(g: np.ndarray, w: np.ndarray, n_g: int) -> np.ndarray:
    pairs = np.unique(g.astype(np.int64) * (int(w.max()) + 1) + w)
    return np.bincount(pairs // (int(w.max()) + 1), minlength=n_g)
