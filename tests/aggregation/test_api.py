from __future__ import annotations

import pandas as pd

import service.aggregation as agg
from service.aggregation import METHODS, AggregationResult, fit_method


def test_exported_names_do_not_grow_by_accident() -> None:
    assert set(agg.__all__) == {
        "AggregationInputError", "AggregationResult", "Borda", "BradleyTerry", "CategoricalAggregator",
        "DawidSkene", "GLAD", "MACE", "METHODS", "MajorityVote", "NoisyBradleyTerry", "OneCoinDawidSkene",
        "OrdinalConsensus", "PlackettLuce", "RankedPairs", "RankingAggregator", "RaterCalibration", "Wawa",
        "agreement_by", "cohen_kappa_pairs", "fit_method", "fleiss_kappa", "krippendorff_alpha", "krippendorff_alpha_ci",
        "percent_agreement", "rater_flags", "select_method",
    }


def test_methods_registry() -> None:
    assert set(METHODS) == {"mv", "wawa", "ds", "onecoin_ds", "glad", "mace"}


def test_fit_method_result(small: pd.DataFrame) -> None:
    res = fit_method("ds", small, n_iter=5)
    assert isinstance(res, AggregationResult)
    assert res.method == "ds" and res.params["n_iter"] == 5
    assert res.labels.name == "label" and res.skills.name == "skill"


def test_auto_reports_choice_and_reason() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    recs = [(f"t{t}", f"w{w}", f"c{(t % 3) if rng.random() < 0.7 else rng.integers(3)}")
            for t in range(200) for w in rng.choice(12, 5, replace=False)]
    df = pd.DataFrame(recs, columns=["task", "worker", "label"])
    res = fit_method("auto", df)
    assert res.params["chosen"] == res.method in METHODS
    assert "held-out" in res.params["reason"]
    assert set(res.params["scores"]) == {"mv", "wawa", "ds", "onecoin_ds", "mace"}
