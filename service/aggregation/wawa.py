r"""Wawa (worker agreement with aggregate): majority vote weighted by each rater's agreement with plain MV.

Model: :math:`s_w = \frac{1}{|A_w|}\sum_{(t,w,y)\in A_w} [y = \hat z^{MV}_t]` (accuracy against the
unweighted majority), then :math:`\hat z_t = \arg\max_k \sum_{(t,w,y)} s_w [y = k]`. No objective is
optimised; it is one reweighting step. ``probas_`` are the weighted vote shares, ``skills_`` the
:math:`s_w`; as in crowd-kit, a rater's repeated identical answer to a task counts once in :math:`s_w`
(every row still votes). Ties go to the label seen first in the rows (or first in ``classes``).
Gold tasks, when given, are pinned
in the first (unweighted) vote, so skills are measured against gold there.

Preconditions: at least two distinct raters.

Citation: the "Wawa" aggregator of Appen/Figure Eight, as implemented in crowd-kit (Ustalov et al.,
"Learning from Crowds with Crowd-Kit", JOSS 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from ._data import Coded
from .base import CategoricalAggregator, pin_gold, row_normalize
from .majority_vote import hard_accuracy, vote_shares

__all__ = ["Wawa"]


def distinct_answers(coded: Coded) -> Coded:
    """``coded`` with repeated identical ``(task, worker, label)`` rows kept once (first occurrence)."""
    key = (coded.task * coded.n_workers + coded.worker) * coded.n_classes + coded.label
    _, first = np.unique(key, return_index=True)
    if len(first) == len(key):
        return coded
    first.sort()
    return replace(coded, task=coded.task[first], worker=coded.worker[first], label=coded.label[first])


@dataclass(kw_only=True)
class Wawa(CategoricalAggregator):
    """Majority vote weighted by agreement with the unweighted majority (see module docstring)."""

    name: ClassVar[str] = "wawa"

    def _fit_coded(self, coded: Coded, gold_t: np.ndarray, gold_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mv = pin_gold(row_normalize(vote_shares(coded)), gold_t, gold_y)
        skills = hard_accuracy(distinct_answers(coded), mv)
        probas = pin_gold(row_normalize(vote_shares(coded, skills)), gold_t, gold_y)
        return probas, skills
