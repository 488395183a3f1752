"""Pure-numerics reconciliation of crowd judgements: label aggregation, pairwise and ranking scores,
rater agreement. No I/O, no logging configuration, no global random state; the domain layer loads rows,
calls these, and stores the result with the method name and parameters.

Column contracts: categorical ``task, worker, label``; pairwise ``worker, left, right, winner``;
rankings ``worker, task, ranking``; ratings ``worker, task, score``.
"""

from .agreement import cohen_kappa_pairs, fleiss_kappa, percent_agreement
from .base import AggregationResult, CategoricalAggregator
from .borda import Borda
from .bradley_terry import BradleyTerry
from .dawid_skene import DawidSkene
from .errors import AggregationInputError
from .flags import rater_flags
from .glad import GLAD
from .grouped import agreement_by
from .krippendorff import krippendorff_alpha, krippendorff_alpha_ci
from .mace import MACE
from .majority_vote import MajorityVote
from .noisy_bt import NoisyBradleyTerry
from .one_coin import OneCoinDawidSkene
from .plackett_luce import PlackettLuce
from .ranked_pairs import RankedPairs
from .rankings import RankingAggregator
from .ratings import OrdinalConsensus, RaterCalibration
from .selection import METHODS, fit_method, select_method
from .wawa import Wawa

__all__ = [
    "GLAD",
    "MACE",
    "METHODS",
    "AggregationInputError",
    "AggregationResult",
    "Borda",
    "BradleyTerry",
    "CategoricalAggregator",
    "DawidSkene",
    "MajorityVote",
    "NoisyBradleyTerry",
    "OneCoinDawidSkene",
    "OrdinalConsensus",
    "PlackettLuce",
    "RankedPairs",
    "RankingAggregator",
    "RaterCalibration",
    "Wawa",
    "agreement_by",
    "cohen_kappa_pairs",
    "fit_method",
    "fleiss_kappa",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "percent_agreement",
    "rater_flags",
    "select_method",
]
