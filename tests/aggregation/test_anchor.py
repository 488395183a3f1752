"""Label-by-label agreement with crowd-kit where it is installed (bench venv); skipped otherwise.

Run with the bench venv's interpreter: ``/work/.venvs/bench-anchors/bin/python -m pytest tests/aggregation``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from service.aggregation import MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa


def _crowd_kit():  # type: ignore[no-untyped-def]
    ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is a bench-only anchor (bench venv)")
    import crowdkit.aggregation.classification.wawa as ck_wawa

    # crowd-kit 1.4.2's Wawa.predict calls sklearn's check_is_fitted, which sklearn >= 1.6 rejects for
    # non-sklearn estimators; the check is a no-op for a fitted model, so skip it
    ck_wawa.check_is_fitted = lambda *args, **kwargs: None
    return ck


def _load(truth_dir: Path, name: str) -> tuple[pd.DataFrame, pd.Series]:
    df = pd.read_csv(truth_dir / name / "answers.csv", dtype=str)
    gold = pd.read_csv(truth_dir / name / "gold.csv", dtype=str).set_index("task")["label"]
    return df, gold


def test_ds_and_mv_match_crowd_kit_on_duck(truth_dir: Path) -> None:
    ck = _crowd_kit()
    df, gold = _load(truth_dir, "d_Duck_Identification")
    for ours, theirs in ((DawidSkene(), ck.DawidSkene(n_iter=100)), (MajorityVote(), ck.MajorityVote())):
        a = (ours.fit_predict(df).reindex(gold.index) == gold).mean()
        b = (theirs.fit_predict(df).reindex(gold.index) == gold).mean()
        assert a >= b - 0.001


@pytest.mark.parametrize("dataset", ["CF", "MS"])
def test_same_labels_as_crowd_kit(truth_dir: Path, dataset: str) -> None:
    ck = _crowd_kit()
    df, _ = _load(truth_dir, dataset)
    pairs = ((MajorityVote(), ck.MajorityVote()), (Wawa(), ck.Wawa()), (DawidSkene(prior=0.0), ck.DawidSkene()),
             (OneCoinDawidSkene(), ck.OneCoinDawidSkene()), (MACE(crowdkit_compat=True), ck.MACE()))
    for ours, theirs in pairs:
        a = ours.fit_predict(df)
        b = theirs.fit_predict(df)
        assert (a.reindex(b.index).astype(str) == b.astype(str)).all(), type(ours).__name__
