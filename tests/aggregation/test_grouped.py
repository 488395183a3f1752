"""agreement_by: every group's α, κ and percent agreement in one pass equal the per-group functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from service.aggregation import (
    AggregationInputError,
    agreement_by,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)

from .test_agreement import _fleiss_frame


def _per_group(part: pd.DataFrame) -> list[float]:
    labels = part[["task", "worker", "label"]]
    out = []
    for fn in (lambda d: krippendorff_alpha(d, level="nominal"), fleiss_kappa, percent_agreement):
        try:
            out.append(fn(labels) if labels["worker"].nunique() >= 2 else np.nan)
        except AggregationInputError:
            out.append(np.nan)
    return out


def test_hand_computed_fleiss_example_as_one_group() -> None:
    df = _fleiss_frame().assign(batch="b1")
    row = agreement_by(df, "batch").loc["b1"]
    assert row["fleiss_kappa"] == pytest.approx(0.210, abs=5e-4)
    assert row["n"] == 140 and row["raters"] == 14


def test_equals_per_group_functions_with_degenerate_groups() -> None:
    rng = np.random.default_rng(7)
    n = 6_000
    df = pd.DataFrame({"task": [f"t{i}" for i in rng.integers(0, 900, n)],
                       "worker": [f"w{i}" for i in rng.integers(0, 40, n)],
                       "label": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])})
    df["batch"] = "b" + (df["task"].str[1:].astype(int) % 17).astype(str)
    degenerate = pd.DataFrame(
        [("x1", "a", "y", "same-value"), ("x1", "b", "y", "same-value"), ("x2", "a", "n", "same-value"),
         ("s1", "a", "y", "one-rater"), ("s1", "a", "n", "one-rater"),
         ("u1", "a", "y", "unpaired"), ("u2", "b", "n", "unpaired")],
        columns=["task", "worker", "label", "batch"])
    df = pd.concat([df, degenerate], ignore_index=True)
    table = agreement_by(df, "batch")
    assert list(table.index) == sorted(df["batch"].unique())
    for key, part in df.groupby("batch"):
        got = table.loc[key, ["krippendorff_alpha", "fleiss_kappa", "percent_agreement"]].to_numpy(float)
        np.testing.assert_allclose(got, _per_group(part), rtol=0, atol=1e-12)
        assert table.loc[key, "n"] == len(part) and table.loc[key, "raters"] == part["worker"].nunique()
    assert table.loc[["same-value", "one-rater", "unpaired"], "krippendorff_alpha"].isna().all()


def test_row_order_does_not_matter() -> None:
    df = _fleiss_frame()
    df["batch"] = np.where(df["task"].isin(["s1", "s2", "s3"]), "early", "late")
    shuffled = df.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(agreement_by(df, "batch"), agreement_by(shuffled, "batch"), atol=1e-12)


def test_missing_group_column_is_a_clear_error() -> None:
    with pytest.raises(AggregationInputError, match="missing column"):
        agreement_by(_fleiss_frame(), "vendor")
