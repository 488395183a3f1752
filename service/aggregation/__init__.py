"""Pure-numerics reconciliation of crowd judgements: label aggregation, pairwise and ranking scores,
rater agreement. No I/O, no logging configuration, no global random state; the domain layer loads rows,
calls these, and stores the result with the method name and parameters.

Column contracts: categorical ``task, worker, label``; pairwise ``worker, left, right, winner``;
rankings ``worker, task, ranking``; ratings ``worker, task, score``.
"""

from .base import AggregationResult, CategoricalAggregator
from .bradley_terry import BradleyTerry
from .dawid_skene import DawidSkene
from .errors import AggregationInputError
from .glad import GLAD
from .krippendorff import krippendorff_alpha, krippendorff_alpha_ci
from .mace import MACE
from .majority_vote import MajorityVote
from .noisy_bt import NoisyBradleyTerry
from .one_coin import OneCoinDawidSkene
from .selection import METHODS, fit_method, select_method
from .wawa import Wawa

__all__ = [
    "GLAD",
    "MACE",
    "METHODS",
    "AggregationInputError",
    "AggregationResult",
    "BradleyTerry",
    "CategoricalAggregator",
    "DawidSkene",
    "MajorityVote",
    "NoisyBradleyTerry",
    "OneCoinDawidSkene",
    "Wawa",
    "fit_method",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "select_method",
]
