"""Cross-check against crowd-kit where it is installed (bench venv); skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from service.aggregation import DawidSkene, MajorityVote


def test_ds_and_mv_match_crowd_kit_on_duck(truth_dir: Path) -> None:
    ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is a bench-only anchor (bench venv)")
    df = pd.read_csv(truth_dir / "d_Duck_Identification" / "answers.csv", dtype=str)
    gold = pd.read_csv(truth_dir / "d_Duck_Identification" / "gold.csv", dtype=str).set_index("task")["label"]
    for ours, theirs in ((DawidSkene(), ck.DawidSkene(n_iter=100)), (MajorityVote(), ck.MajorityVote())):
        a = (ours.fit_predict(df).reindex(gold.index) == gold).mean()
        b = (theirs.fit_predict(df).reindex(gold.index) == gold).mean()
        assert a >= b - 0.001
