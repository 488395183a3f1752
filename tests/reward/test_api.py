import service.reward as reward


def test_public_surface_is_exactly_this() -> None:
    assert set(reward.__all__) == {
        "RewardConfig", "TrainResult", "train_reward_model", "load_reward_model", "score_texts",
        "evaluate_saved_model", "is_better", "bt_loss", "pairwise_accuracy", "expected_calibration_error",
        "normalize_pairs", "rankings_to_pairs", "likert_to_margin", "likert_to_pairs", "posterior_to_pairs",
        "pairs_hash", "export_trl", "export_dpo", "read_pairs",
    }
    for name in reward.__all__:
        assert hasattr(reward, name)
