import pytest

from service.reward import RewardConfig


@pytest.mark.parametrize("kwargs", [
    {"mode": "lora"}, {"mixed_precision": "fp16", "device": "cpu"}, {"max_length": 4}, {"batch_size": 0},
    {"epochs": 0}, {"learning_rate": -1.0}, {"warmup_ratio": 1.0}, {"pooling": "max"}, {"num_threads": 0},
])
def test_contradictions_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RewardConfig(**kwargs)


def test_per_mode_defaults_resolved_and_json_roundtrip() -> None:
    frozen = RewardConfig(mode="frozen").resolved()
    full = RewardConfig(mode="full").resolved()
    assert (frozen.epochs, frozen.learning_rate) == (10, 1e-3)
    assert (full.epochs, full.learning_rate) == (1, 2e-5)
    assert RewardConfig(mode="full", epochs=3).resolved().epochs == 3
    cfg = RewardConfig(mode="full", cache_dir="/tmp/x")
    assert RewardConfig.from_dict(cfg.to_dict()) == cfg


def test_save_steps_in_frozen_mode_warns() -> None:
    with pytest.warns(UserWarning):
        RewardConfig(mode="frozen", save_steps=5)
