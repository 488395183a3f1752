r"""Borda count over k-way rankings.

Model: in a ranking of :math:`m` items the item at 0-based position :math:`p` gets :math:`(m-1-p)/(m-1)`
points (1 for the top, 0 for the bottom, so partial rankings of different lengths weigh alike); an item's
score is its mean points over the rankings that name it. No objective is optimised.

Preconditions: none beyond the ranking contract (``service.aggregation.rankings``).

Citation: J.-C. de Borda, "Mémoire sur les élections au scrutin", 1781; see Brandt et al., *Handbook of
Computational Social Choice*, 2016, ch. 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rankings import RankingAggregator, Rankings

__all__ = ["Borda"]


@dataclass(kw_only=True)
class Borda(RankingAggregator):
    """Mean normalised Borda points per item (see module docstring)."""

    def _scores(self, r: Rankings) -> np.ndarray:
        points = (r.length - 1 - r.pos) / (r.length - 1)
        n = np.bincount(r.item, minlength=r.n_items)
        return np.bincount(r.item, weights=points, minlength=r.n_items) / np.maximum(n, 1)
