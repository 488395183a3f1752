"""Reward models from preference pairs: datasets, training (frozen-encoder or full), evaluation, artifacts.

    from service.reward import RewardConfig, train_reward_model, load_reward_model, score_texts
    result = train_reward_model(RewardConfig(mode="frozen", backbone="minilm"), train_df, eval_df, out_dir)
    model = load_reward_model(result.artifact_dir)
    rewards = score_texts(model, prompts, responses)

Names load lazily (PEP 562): ``from service.reward import pairs_hash`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "RewardConfig",
    "TrainResult",
    "train_reward_model",
    "load_reward_model",
    "score_texts",
    "evaluate_saved_model",
    "is_better",
    "bt_loss",
    "pairwise_accuracy",
    "expected_calibration_error",
    "normalize_pairs",
    "rankings_to_pairs",
    "likert_to_margin",
    "likert_to_pairs",
    "posterior_to_pairs",
    "pairs_hash",
    "export_trl",
    "export_dpo",
    "read_pairs",
]

_WHERE = {
    "RewardConfig": "config",
    "TrainResult": "artifacts", "load_reward_model": "artifacts", "score_texts": "artifacts",
    "evaluate_saved_model": "artifacts", "is_better": "artifacts",
    "train_reward_model": "training",
    "bt_loss": "metrics", "pairwise_accuracy": "metrics", "expected_calibration_error": "metrics",
    **{name: "dataset" for name in ("normalize_pairs", "rankings_to_pairs", "likert_to_margin",
                                    "likert_to_pairs", "posterior_to_pairs", "pairs_hash", "export_trl",
                                    "export_dpo", "read_pairs")},
}

if TYPE_CHECKING:
    from .artifacts import TrainResult, evaluate_saved_model, is_better, load_reward_model, score_texts
    from .config import RewardConfig
    from .dataset import (
        export_dpo,
        export_trl,
        likert_to_margin,
        likert_to_pairs,
        normalize_pairs,
        pairs_hash,
        posterior_to_pairs,
        rankings_to_pairs,
        read_pairs,
    )
    from .metrics import bt_loss, expected_calibration_error, pairwise_accuracy
    from .training import train_reward_model


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
