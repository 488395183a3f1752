r"""Wawa (worker agreement with aggregate): majority vote weighted by each rater's agreement with plain MV.

Model: :math:`s_w = \frac{1}{|A_w|}\sum_{(t,w,y)\in A_w} [y = \hat z^{MV}_t]` (accuracy against the
unweighted majority), then :math:`\hat z_t = \arg\max_k \sum_{(t,w,y)} s_w [y = k]`. No objective is
optimised; it is one reweighting step. ``probas_`` are the weighted vote shares, ``skills_`` the
:math:`s_w`. Ties go to the first label in sorted (or declared) order. Gold tasks, when given, are pinned
in the first (unweighted) vote, so skills are measured against gold there.

Preconditions: at least two distinct raters.

Citation: the "Wawa" aggregator of Appen/Figure Eight, as implemented in crowd-kit (Ustalov et al.,
"Learning from Crowds with Crowd-Kit", JOSS 2024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._data import Coded
from .base import CategoricalAggregator, pin_gold, row_normalize
from .majority_vote import hard_accuracy, vote_shares

__all__ = ["Wawa"]


@dataclass(kw_only=True)
class Wawa(CategoricalAggregator):
    """Majority vote weighted by agreement with the unweighted majority (see module docstring)."""

    name: ClassVar[str] = "wawa"

    def _fit_coded(self, coded: Coded, gold_t: np.ndarray, gold_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mv = pin_gold(row_normalize(vote_shares(coded)), gold_t, gold_y)
        skills = hard_accuracy(coded, mv)
        probas = pin_gold(row_normalize(vote_shares(coded, skills)), gold_t, gold_y)
        return probas, skills
