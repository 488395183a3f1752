"""Rankings (Plackett–Luce, ranked pairs, Borda) and ratings (bias/scale correction, ordinal consensus)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.aggregation import (
    AggregationInputError,
    Borda,
    OrdinalConsensus,
    PlackettLuce,
    RankedPairs,
    RaterCalibration,
)

RANKERS = (PlackettLuce, RankedPairs, Borda)


def rk(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["worker", "task", "ranking"])


@pytest.mark.parametrize("cls", RANKERS)
def test_unanimous_rankings_are_the_consensus(cls: type) -> None:
    df = rk(("w1", "t1", "C>A>B"), ("w2", "t1", "C>A>B"), ("w1", "t2", "x>y"), ("w2", "t2", "x > y"))
    m = cls().fit(df)
    assert m.labels_.to_dict() == {"t1": "C>A>B", "t2": "x>y"}
    assert m.skills_.tolist() == [1.0, 1.0]


def test_borda_hand_computed() -> None:
    # t1: A gets 1 + 1 + .5, B .5 + 0 + 1, C 0 + .5 + 0 (points (m-1-p)/(m-1)) -> means 5/6, 1/2, 1/6
    df = rk(("w1", "t1", "A>B>C"), ("w2", "t1", "A>C>B"), ("w3", "t1", "B>A>C"))
    m = Borda().fit(df)
    np.testing.assert_allclose(m.scores_.loc["t1"].to_numpy(), [5 / 6, 1 / 2, 1 / 6])
    assert m.labels_["t1"] == "A>B>C"
    assert m.skills_["w1"] == 1.0 and m.skills_["w2"] == pytest.approx(2 / 3)


def test_plackett_luce_two_items_is_win_ratio() -> None:
    # with two items PL is Bradley–Terry: the MLE worth ratio is wins_A / wins_B = 3
    df = rk(*[(f"w{i}", "t", "A>B") for i in range(3)], ("w9", "t", "B>A"))
    m = PlackettLuce(prior=0.0, tol=1e-12).fit(df)
    assert m.worths_[0] / m.worths_[1] == pytest.approx(3.0, rel=1e-6)


def test_plackett_luce_prior_keeps_always_last_item_finite() -> None:
    m = PlackettLuce().fit(rk(("w1", "t", "A>B>C"), ("w2", "t", "B>A>C")))
    assert np.isfinite(m.scores_).all() and m.labels_["t"].endswith("C")


def test_ranked_pairs_breaks_a_condorcet_cycle_by_margin() -> None:
    # 3x A>B>C, 2x B>C>A, 2x C>A>B: A beats B 5-2 (margin 3), B beats C 5-2 (3), C beats A 4-3 (1), a cycle.
    # Lock A>B and B>C, skip C>A (it would close the cycle) -> A>B>C; Borda agrees here, PL too.
    rows = [(f"a{i}", "t", "A>B>C") for i in range(3)] + [(f"b{i}", "t", "B>C>A") for i in range(2)] + \
        [(f"c{i}", "t", "C>A>B") for i in range(2)]
    m = RankedPairs().fit(rk(*rows))
    assert m.labels_["t"] == "A>B>C"
    assert m.scores_.loc["t"].tolist() == [2.0, 1.0, 0.0]


def test_ranked_pairs_puts_the_condorcet_winner_first() -> None:
    df = rk(("w1", "t", "B>A>C"), ("w2", "t", "B>C>A"), ("w3", "t", "A>B>C"))
    assert RankedPairs().fit(df).labels_["t"] == "B>A>C"


@pytest.mark.parametrize("bad,msg", [
    (rk(("w", "t", "A")), "fewer than two"),
    (rk(("w", "t", "A>A")), "twice"),
    (rk(("w", "t", "A=B>C")), "ties"),
    (rk(("w", "t", "A>>B")), "empty item"),
    (pd.DataFrame({"worker": ["w"], "task": ["t"]}), "missing column"),
])
def test_ranking_bad_input(bad: pd.DataFrame, msg: str) -> None:
    with pytest.raises(AggregationInputError, match=msg):
        PlackettLuce().fit(bad)


def _ratings(seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    mu = rng.normal(50, 15, 200)
    bias, scale, noise = rng.normal(0, 10, 20), rng.uniform(0.5, 1.5, 20), rng.uniform(2, 12, 20)
    rows = [(f"w{w}", f"t{t}", 50 + bias[w] + scale[w] * (mu[t] - 50) + rng.normal(0, noise[w]))
            for t in range(200) for w in rng.choice(20, 5, replace=False)]
    return pd.DataFrame(rows, columns=["worker", "task", "score"]), pd.Series(mu, index=[f"t{t}" for t in range(200)])


def test_rater_calibration_beats_the_plain_mean() -> None:
    df, mu = _ratings()
    cal = RaterCalibration().fit(df).scores_.reindex(mu.index)
    naive = df.groupby("task")["score"].mean().reindex(mu.index)
    assert np.corrcoef(cal, mu)[0, 1] > np.corrcoef(naive, mu)[0, 1] + 0.02


def test_rater_calibration_recovers_a_constant_offset() -> None:
    # w2 always rates 2 points above w1, on the same items -> bias difference 2, same consensus order
    df = pd.DataFrame({"worker": ["w1"] * 4 + ["w2"] * 4, "task": list("abcd") * 2,
                       "score": [1, 2, 3, 4, 3, 4, 5, 6]})
    m = RaterCalibration(shrinkage=0.0).fit(df)
    assert m.bias_["w2"] - m.bias_["w1"] == pytest.approx(2.0, abs=1e-6)
    assert list(m.scores_.sort_values().index) == list("abcd")


def test_ordinal_consensus_is_weighted_median_level() -> None:
    df = pd.DataFrame({"worker": ["w1", "w2", "w3", "w1", "w2", "w3"], "task": ["a"] * 3 + ["b"] * 3,
                       "score": [1, 2, 5, 4, 4, 5]})
    m = OrdinalConsensus(weighted=False).fit(df)
    assert m.labels_.to_dict() == {"a": 2, "b": 4}  # a median, never the mean 2.67
    assert m.probas_.loc["b", 4] == pytest.approx(2 / 3)


def test_ratings_bad_input() -> None:
    with pytest.raises(AggregationInputError, match="number"):
        RaterCalibration().fit(pd.DataFrame({"worker": ["a", "b"], "task": ["t", "t"], "score": ["1", "x"]}))
    with pytest.raises(AggregationInputError, match="one rater"):
        OrdinalConsensus().fit(pd.DataFrame({"worker": ["a", "a"], "task": ["t", "u"], "score": [1, 2]}))
