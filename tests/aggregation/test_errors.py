"""Every bad input raises AggregationInputError (a ValueError) with a message that says what to fix."""

from __future__ import annotations

import pandas as pd
import pytest

from service.aggregation import (
    METHODS,
    AggregationInputError,
    BradleyTerry,
    DawidSkene,
    fit_method,
    krippendorff_alpha,
)

from .conftest import rows


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize(
    ("df", "match"),
    [
        (pd.DataFrame(columns=["task", "worker", "label"]), "no rows"),
        (pd.DataFrame({"task": ["t"], "label": ["a"]}), "missing column"),
        (rows(("t1", "w1", "a"), ("t2", "w1", "b")), "at least 2"),
        (pd.DataFrame({"task": ["t", "t"], "worker": ["w1", "w2"], "label": ["a", None]}), "missing value"),
        ([("t", "w", "a")], "DataFrame"),
    ],
    ids=["empty", "missing-column", "one-rater", "null", "not-a-frame"],
)
def test_bad_frames(name: str, df: object, match: str) -> None:
    with pytest.raises(AggregationInputError, match=match):
        METHODS[name]().fit(df)


def test_is_a_value_error() -> None:
    assert issubclass(AggregationInputError, ValueError)


def test_labels_outside_declared_set(small: pd.DataFrame) -> None:
    with pytest.raises(AggregationInputError, match="outside the declared set"):
        DawidSkene(classes=["a"]).fit(small)


def test_gold_label_never_seen(small: pd.DataFrame) -> None:
    with pytest.raises(AggregationInputError, match="never occur"):
        DawidSkene().fit(small, gold=pd.Series({"t1": "zzz"}))


def test_bad_hyperparameters() -> None:
    with pytest.raises(AggregationInputError):
        DawidSkene(n_iter=-1)


def test_unknown_method(small: pd.DataFrame) -> None:
    with pytest.raises(AggregationInputError, match="unknown method"):
        fit_method("nope", small)
    with pytest.raises(AggregationInputError, match="bad parameter"):
        fit_method("ds", small, bogus=1)


def test_alpha_errors() -> None:
    with pytest.raises(AggregationInputError, match="two distinct raters"):
        krippendorff_alpha(rows(("t", "w", "a"), ("u", "w", "b")))
    with pytest.raises(AggregationInputError, match="no task has two"):
        krippendorff_alpha(rows(("t", "w1", "a"), ("u", "w2", "b")))
    with pytest.raises(AggregationInputError, match="numeric"):
        krippendorff_alpha(rows(("t", "w1", "a"), ("t", "w2", "b")), "interval")
    with pytest.raises(AggregationInputError, match="level"):
        krippendorff_alpha(rows(("t", "w1", "a"), ("t", "w2", "b")), "cardinal")  # type: ignore[arg-type]


def test_pairwise_errors() -> None:
    def pairs(*r: tuple[str, str, str, str]) -> pd.DataFrame:
        return pd.DataFrame(list(r), columns=["worker", "left", "right", "winner"])

    with pytest.raises(AggregationInputError, match="disconnected"):
        BradleyTerry().fit(pairs(("w", "a", "b", "left"), ("w", "c", "d", "right")))
    with pytest.raises(AggregationInputError, match="winner must be"):
        BradleyTerry().fit(pairs(("w", "a", "b", "up")))
    with pytest.raises(AggregationInputError, match="itself"):
        BradleyTerry().fit(pairs(("w", "a", "a", "left")))
    with pytest.raises(AggregationInputError, match="missing column"):
        BradleyTerry().fit(pd.DataFrame({"left": ["a"], "right": ["b"]}))
