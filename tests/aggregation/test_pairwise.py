from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.aggregation import BradleyTerry, NoisyBradleyTerry


def pairs(*r: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(r), columns=["worker", "left", "right", "winner"])


def test_bradley_terry_two_items_by_hand() -> None:
    # a beats b 3 times of 4: MLE theta_a - theta_b = log 3 (reg shrinks it slightly)
    df = pairs(("w1", "a", "b", "left"), ("w2", "a", "b", "a"), ("w3", "b", "a", "right"), ("w4", "a", "b", "right"))
    s = BradleyTerry(reg=1e-8).fit(df).scores_
    assert s["a"] - s["b"] == pytest.approx(np.log(3), abs=1e-4)
    assert s.sum() == pytest.approx(0.0, abs=1e-9)


def test_davidson_ties_by_hand() -> None:
    # one win each way and two ties: equal scores, P(tie) = nu / (2 + nu) = 1/2 -> nu = 2
    df = pairs(("w", "a", "b", "left"), ("w", "a", "b", "right"), ("w", "a", "b", "tie"), ("w", "b", "a", "tie"))
    bt = BradleyTerry(reg=1e-8).fit(df)
    assert bt.scores_["a"] == pytest.approx(bt.scores_["b"], abs=1e-5)
    assert bt.tie_param_ == pytest.approx(2.0, rel=1e-3)


def test_bradley_terry_orders_a_chain() -> None:
    rng = np.random.default_rng(0)
    true = np.linspace(-2, 2, 8)
    recs = []
    for _ in range(3000):
        i, j = rng.choice(8, 2, replace=False)
        recs.append(("w", f"i{i}", f"i{j}", "left" if rng.random() < 1 / (1 + np.exp(true[j] - true[i])) else "right"))
    s = BradleyTerry().fit(pairs(*recs)).scores_
    assert list(s.sort_values().index) == [f"i{k}" for k in range(8)]


def test_noisy_bt_finds_the_reversed_rater() -> None:
    rng = np.random.default_rng(0)
    true = np.linspace(-2, 2, 6)
    recs = []
    for k in range(4000):
        i, j = rng.choice(6, 2, replace=False)
        left_wins = rng.random() < 1 / (1 + np.exp(true[j] - true[i]))
        w = f"w{k % 4}"
        if w == "w3":
            left_wins = not left_wins
        recs.append((w, f"i{i}", f"i{j}", "left" if left_wins else "right"))
    nbt = NoisyBradleyTerry().fit(pairs(*recs))
    assert nbt.skills_["w3"] < 0.2 < 0.8 < nbt.skills_["w0"]
    assert list(nbt.scores_.sort_values().index) == [f"i{k}" for k in range(6)]
