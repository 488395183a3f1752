"""Training on tiny-bert (random 2-layer BERT, hidden 32): each test takes seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service.reward import evaluate_saved_model, is_better, load_reward_model, score_texts, train_reward_model
from service.reward.modeling import encode_texts
from service.reward.training import build_model

from .conftest import synthetic_pairs, tiny_config


def test_full_smoke_parameters_change(tmp_path, learnable) -> None:
    """TRL's pattern: every trainable parameter moved after a few steps.

    Centring is on: without it the head bias and the last LayerNorm bias only shift every reward by a
    constant, which the Bradley–Terry loss cannot see, so their gradient is exactly zero.
    """
    train, ev = learnable
    cfg = tiny_config(mode="full", max_steps=3, learning_rate=1e-3, center_rewards_coefficient=0.01)
    before = {k: v.clone() for k, v in build_model(cfg.resolved()).state_dict().items()}
    result = train_reward_model(cfg, train, ev, tmp_path)
    after = load_reward_model(tmp_path).state_dict()
    moved = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    unchanged = [k for k in before if k in after and k not in moved and "position_ids" not in k
                 and "token_type" not in k]
    # embeddings of tokens never seen stay put only through weight decay; everything else must move
    assert not [k for k in unchanged if "word_embeddings" not in k], unchanged
    assert {"head.net.weight", "head.net.bias"} <= set(moved)
    m = result.metrics
    for key in ("heldout_accuracy", "calibration_error", "train_loss", "pairs_per_second", "n_train", "n_eval"):
        assert key in m and np.isfinite(m[key]), key
    assert m["n_train"] == 96 and m["n_eval"] == 48 and m["steps"] == 3
    json.dumps(result.config)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "config.json").exists()


def test_full_loss_decreases_and_learns(tmp_path, learnable) -> None:
    train, ev = learnable
    losses: list[float] = []
    result = train_reward_model(tiny_config(mode="full", epochs=4, learning_rate=3e-3), train, ev, tmp_path,
                                progress=lambda step, total, loss: losses.append(loss))
    assert len(losses) == 4 * 12
    assert np.mean(losses[-6:]) < np.mean(losses[:6]) - 0.2
    assert result.metrics["heldout_accuracy"] > 0.9


def test_frozen_above_chance_and_cache_reused(tmp_path, learnable) -> None:
    train, ev = learnable
    cfg = tiny_config(mode="frozen", epochs=40, learning_rate=1e-2, cache_dir=tmp_path / "cache")
    first = train_reward_model(cfg, train, ev, tmp_path / "a")
    assert first.metrics["heldout_accuracy"] > 0.75
    assert first.metrics["embedded_sequences"] == 2 * (96 + 48)
    assert first.metrics["pairs_per_second"] > 1000
    second = train_reward_model(cfg, train, ev, tmp_path / "b")
    assert second.metrics["embedded_sequences"] == 0 and second.metrics["cached_sequences"] == 288
    assert second.metrics["heldout_accuracy"] == first.metrics["heldout_accuracy"]
    # another max_length is another cache key
    third = train_reward_model(tiny_config(mode="frozen", epochs=1, max_length=40, cache_dir=tmp_path / "cache"),
                               train, ev, tmp_path / "c")
    assert third.metrics["embedded_sequences"] == 288


def test_checkpoint_and_resume_match_uninterrupted(tmp_path, learnable) -> None:
    train, ev = learnable
    cfg = tiny_config(mode="full", max_steps=6, learning_rate=1e-3, save_steps=2)
    straight = train_reward_model(cfg, train, ev, tmp_path / "straight")

    class Crash(RuntimeError):
        pass

    def crash_at_5(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise Crash

    with pytest.raises(Crash):
        train_reward_model(cfg, train, ev, tmp_path / "resumed", progress=crash_at_5)
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()] == ["step-4"]
    steps: list[int] = []
    resumed = train_reward_model(tiny_config(mode="full", max_steps=6, learning_rate=1e-3, save_steps=2,
                                             resume=True),
                                 train, ev, tmp_path / "resumed", progress=lambda s, t, l: steps.append(s))
    assert steps == [5, 6]
    a, b = load_reward_model(tmp_path / "straight"), load_reward_model(tmp_path / "resumed")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-6), k
    assert resumed.metrics["heldout_accuracy"] == pytest.approx(straight.metrics["heldout_accuracy"])


@pytest.mark.parametrize("mode", ["frozen", "full"])
def test_save_load_roundtrip_scores_and_metrics(tmp_path, learnable, mode: str) -> None:
    train, ev = learnable
    cfg = tiny_config(mode=mode, epochs=2, learning_rate=1e-2 if mode == "frozen" else 1e-3)
    result = train_reward_model(cfg, train, ev, tmp_path)
    model = load_reward_model(tmp_path)
    again = evaluate_saved_model(tmp_path, ev)
    assert again["heldout_accuracy"] == pytest.approx(result.metrics["heldout_accuracy"])
    assert again["calibration_error"] == pytest.approx(result.metrics["calibration_error"], abs=1e-6)
    r = score_texts(model, ev["prompt"], ev["chosen"])
    rn = score_texts(model, ev["prompt"], ev["chosen"], normalize=True)
    assert r.shape == (48,)
    assert np.allclose(rn, (r - result.metrics["reward_mean"]) / result.metrics["reward_std"])
    assert is_better(again, None) and not is_better(again, again)


def test_overlong_pairs_truncated_not_dropped(tmp_path) -> None:
    train = synthetic_pairs(16)
    train["prompt"] = train["prompt"] + " context" * 200
    train["chosen"] = train["chosen"] + " more" * 100
    cfg = tiny_config(mode="full", max_steps=2, max_length=32)
    result = train_reward_model(cfg, train, train, tmp_path)
    assert result.metrics["n_train"] == 16 and result.metrics["n_eval"] == 16
    model = build_model(cfg.resolved())
    enc = encode_texts(model.tokenizer, list(train["prompt"]), list(train["chosen"]), 32, decoder=False)
    assert enc.lengths.max() == 32
    tok = model.tokenizer
    first = enc.ids[0]
    assert first[0] == tok.cls_token_id and first[-1] == tok.sep_token_id
    # the prompt keeps its end, the response its start
    assert tok.decode(first[1:first.index(tok.sep_token_id)]).endswith("context context")
    assert "helpful" in tok.decode(first[first.index(tok.sep_token_id):])
