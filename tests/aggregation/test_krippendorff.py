from __future__ import annotations

from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest

from service.aggregation import krippendorff_alpha, krippendorff_alpha_ci

from .conftest import rows


def _reference(df: pd.DataFrame, level: str) -> float:
    domain = np.sort(df["label"].unique())
    vc = pd.crosstab(df["task"], df["label"]).reindex(columns=domain, fill_value=0).to_numpy()
    return float(krippendorff.alpha(value_counts=vc, value_domain=domain, level_of_measurement=level))


def test_alpha_by_hand(small: pd.DataFrame) -> None:
    # o_aa=2, o_bb=1, o_ab=o_ba=3; n_a=5, n_b=4, n=9 -> alpha = 1 - 6 / (2*5*4/8) = -0.2
    assert krippendorff_alpha(small) == pytest.approx(-0.2, abs=1e-12)


def test_perfect_agreement_is_one() -> None:
    df = rows(("t1", "w1", "a"), ("t1", "w2", "a"), ("t2", "w1", "b"), ("t2", "w2", "b"))
    assert krippendorff_alpha(df) == pytest.approx(1.0)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_matches_krippendorff_package_on_random_data(level: str) -> None:
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"task": rng.integers(0, 120, n), "worker": rng.integers(0, 9, n),
                       "label": rng.integers(1, 6, n)})
    assert krippendorff_alpha(df, level) == pytest.approx(_reference(df, level), abs=1e-9)


def test_ordinal_with_declared_order_of_strings() -> None:
    names = {1: "low", 2: "mid", 3: "high"}
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"task": rng.integers(0, 40, 200), "worker": rng.integers(0, 5, 200),
                       "label": rng.integers(1, 4, 200)})
    as_str = df.assign(label=df["label"].map(names))
    assert krippendorff_alpha(as_str, "ordinal", order=["low", "mid", "high"]) == pytest.approx(
        _reference(df, "ordinal"), abs=1e-9)


FAST = {"d_Duck_Identification": 0.1255, "s4_Dog_data": 0.5194, "s4_Face_Sentiment_Identification": 0.4949,
        "snow_rte": 0.2415, "snow_wsd": 0.9372}


@pytest.mark.parametrize("name", sorted(FAST))
def test_matches_krippendorff_on_shared_datasets(truth_dir: Path, name: str) -> None:
    df = pd.read_csv(truth_dir / name / "answers.csv", dtype=str)
    ours = krippendorff_alpha(df)
    assert ours == pytest.approx(_reference(df, "nominal"), abs=1e-9)
    assert ours == pytest.approx(FAST[name], abs=5e-5)


def test_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 100)
    recs = [(t, w, truth[t] if rng.random() < 0.8 else rng.integers(3)) for t in range(100) for w in range(4)]
    df = pd.DataFrame(recs, columns=["task", "worker", "label"])
    a, lo, hi = krippendorff_alpha_ci(df, n_boot=200, seed=1)
    assert lo <= a <= hi and hi - lo < 0.3
    assert krippendorff_alpha_ci(df, n_boot=200, seed=1) == (a, lo, hi)


def test_nominal_shortcut_equals_the_coincidence_matrix_formula() -> None:
    # nominal α skips the V x V coincidence matrix; check it against the textbook computation
    from service.aggregation.krippendorff import krippendorff_alpha_from_counts

    rng = np.random.default_rng(3)
    for _ in range(20):
        counts = rng.integers(0, 4, size=(int(rng.integers(2, 40)), int(rng.integers(2, 7)))).astype(float)
        counts[0, :2] = [2, 1]  # at least one paired unit with two values
        m = counts.sum(axis=1)
        c = counts[m >= 2]
        mu = m[m >= 2]
        o = c.T @ (c / (mu - 1)[:, None]) - np.diag((c / (mu - 1)[:, None]).sum(axis=0))
        n_v = o.sum(axis=0)
        n = n_v.sum()
        d = 1 - np.eye(len(n_v))
        e = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1)
        assert krippendorff_alpha_from_counts(counts) == pytest.approx(1 - (o * d).sum() / (e * d).sum(), abs=1e-12)
