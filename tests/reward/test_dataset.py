import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.reward import (
    export_dpo,
    export_trl,
    likert_to_margin,
    likert_to_pairs,
    normalize_pairs,
    pairs_hash,
    posterior_to_pairs,
    rankings_to_pairs,
)

from .conftest import synthetic_pairs

ROOT = Path(__file__).resolve().parents[2]


def test_ranking_expansion_weights_per_response() -> None:
    df = pd.DataFrame({"prompt": ["p", "q"], "ranking": [["a", "b", "c", "d"], ["x", "y"]], "rater": [7, 8]})
    pairs = rankings_to_pairs(df)
    four = pairs[pairs["prompt"] == "p"]
    assert len(four) == 6 and len(pairs) == 7
    assert set(zip(four["chosen"], four["rejected"])) == {
        ("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")}
    assert np.allclose(four["sample_weight"], 1 / 3)
    # every response carries total weight 1 over the pairs it appears in
    for r in "abcd":
        assert four.loc[(four["chosen"] == r) | (four["rejected"] == r), "sample_weight"].sum() == pytest.approx(1)
    assert pairs.loc[pairs["prompt"] == "q", "sample_weight"].item() == 1.0
    assert (pairs["weight"] == 1.0).all() and (pairs["rater"].isin([7, 8])).all()
    per_ranking = rankings_to_pairs(df, normalize="per_ranking")
    assert per_ranking.loc[per_ranking["prompt"] == "p", "sample_weight"].sum() == pytest.approx(1.0)


def test_ranking_with_one_distinct_response_yields_nothing() -> None:
    assert rankings_to_pairs(pd.DataFrame({"prompt": ["p"], "ranking": [["a", "a"]]})).empty


def test_likert_margins_and_ties() -> None:
    assert np.allclose(likert_to_margin([1, 2, 3, 4]), [0, 1 / 3, 2 / 3, 1])
    with pytest.raises(ValueError):
        likert_to_margin([0])
    df = pd.DataFrame({"prompt": ["p"] * 3, "response_a": ["a1", "a2", "a3"], "response_b": ["b1", "b2", "b3"],
                       "score": [3, -1, 0]})
    out = likert_to_pairs(df)
    assert list(out["chosen"]) == ["a1", "b2", "a3"]
    assert np.allclose(out["margin"], [1.0, 0.0, 0.0]) and np.allclose(out["weight"], [1, 1, 0.5])


def test_posterior_to_soft_labels_orients_and_filters() -> None:
    df = pd.DataFrame({"prompt": ["p"] * 3, "response_a": ["a1", "a2", "a3"], "response_b": ["b1", "b2", "b3"],
                       "p_a": [0.9, 0.2, 0.55]})
    out = posterior_to_pairs(df, min_confidence=0.6)
    assert list(out["chosen"]) == ["a1", "b2"] and np.allclose(out["weight"], [0.9, 0.8])


def test_hash_stable_order_free_and_content_sensitive() -> None:
    df = synthetic_pairs(20)
    h = pairs_hash(df)
    assert h == pairs_hash(df.sample(frac=1.0, random_state=3))
    assert h != pairs_hash(df.sample(frac=1.0, random_state=3), ordered=True)
    assert h == pairs_hash(df.assign(weight=1.0, margin=0.0))
    assert h != pairs_hash(df.assign(weight=0.9))
    changed = df.copy()
    changed.loc[0, "chosen"] += "!"
    assert h != pairs_hash(changed)
    code = ("import sys; from service.reward import pairs_hash; from tests.reward.conftest import synthetic_pairs; "
            "print(pairs_hash(synthetic_pairs(20))); print('torch' in sys.modules)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=ROOT)
    digest, torch_loaded = other.stdout.split()
    assert digest == h
    assert torch_loaded == "False"  # the dataset helpers stay importable without torch


def test_normalize_rejects_bad_frames() -> None:
    with pytest.raises(ValueError):
        normalize_pairs(pd.DataFrame({"prompt": ["p"], "chosen": ["c"]}))
    with pytest.raises(ValueError):
        normalize_pairs(pd.DataFrame({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"], "weight": [1.5]}))


def test_exports_roundtrip(tmp_path) -> None:
    df = pd.DataFrame({"prompt": ["p", "q", "r"], "chosen": ["c1", "c2", "c3"], "rejected": ["r1", "r2", "r3"],
                       "weight": [1.0, 0.2, 0.5], "margin": [0.5, 0.0, 0.0]})
    trl = pd.read_json(export_trl(df, tmp_path / "trl.jsonl"), lines=True)
    assert list(trl.columns) == ["prompt", "chosen", "rejected", "margin"]
    assert list(trl["chosen"]) == ["c1", "r2"]  # flipped the 0.2, dropped the tie
    dpo = pd.read_parquet(export_dpo(df, tmp_path / "dpo.parquet", min_confidence=0.9))
    assert list(dpo.columns) == ["prompt", "chosen", "rejected"] and list(dpo["chosen"]) == ["c1"]
    with pytest.raises(ValueError):
        export_dpo(df, tmp_path / "x.csv")
