"""Reward models from preference pairs: datasets, training (frozen-encoder or full), evaluation, artifacts.

    from service.reward import RewardConfig, train_reward_model, load_reward_model, score_texts
    result = train_reward_model(RewardConfig(mode="frozen", backbone="minilm"), train_df, eval_df, out_dir)
    model = load_reward_model(result.artifact_dir)
    rewards = score_texts(model, prompts, responses)
"""

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
