from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRUTH = DATA / "truth-inference"


def rows(*triples: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(triples), columns=["task", "worker", "label"])


@pytest.fixture
def truth_dir() -> Path:
    if not TRUTH.is_dir():
        pytest.skip(f"shared data not found at {TRUTH} (checkout without ../shared)")
    return TRUTH


@pytest.fixture
def small() -> pd.DataFrame:
    """3 tasks x 3 raters; w3 always disagrees. Hand answers: MV t1=a, t2=b, t3=a."""
    return rows(
        ("t1", "w1", "a"), ("t1", "w2", "a"), ("t1", "w3", "b"),
        ("t2", "w1", "b"), ("t2", "w2", "b"), ("t2", "w3", "a"),
        ("t3", "w1", "a"), ("t3", "w2", "a"), ("t3", "w3", "b"),
    )
