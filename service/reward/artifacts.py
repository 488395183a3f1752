"""Saved reward-model artifacts: write, reload, score texts, and evaluate a saved version.

Layout of an artifact directory::

    config.json     resolved RewardConfig + ``artifact`` block (format, pooling, backbone source, data hashes)
    metrics.json    held-out metrics, training stats, ``reward_mean`` / ``reward_std`` for normalisation
    head.safetensors
    backbone/       weights + tokenizer (full mode, or a random tiny backbone); frozen mode on a named
                    backbone stores only a reference (``artifact.backbone_source``) and the tokenizer
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from .dataset import normalize_pairs
from .metrics import pairwise_metrics
from .modeling import RewardModel, encode_texts, load_backbone, minilm_path, write_json
from .runtime import Runtime, setup_runtime

__all__ = ["TrainResult", "save_artifacts", "load_reward_model", "score_texts", "evaluate_saved_model",
           "is_better"]

FORMAT = "crowdbridge-reward-v1"


@dataclass
class TrainResult:
    """What one training run produced.

    metrics: held-out (``heldout_accuracy``, ``calibration_error``, ``eval_loss``) and training
        (``train_loss``, ``pairs_per_second``, ``n_train``, ``n_eval``, ``reward_mean``, ``reward_std``, ...)
        numbers. ``pairs_per_second`` counts optimizer-step throughput: in frozen mode that is the head on
        cached embeddings, and ``end_to_end_pairs_per_second`` / ``embed_seconds`` include embedding.
        artifact_dir: where :func:`load_reward_model` finds the model. config: the resolved config
        and artifact block, JSON-able (what ``config.json`` holds).
    """

    metrics: dict[str, float]
    artifact_dir: Path
    config: dict[str, Any] = field(default_factory=dict)


def save_artifacts(model: RewardModel, out_dir: Path, config: dict[str, Any], metrics: dict[str, float],
                   *, store_backbone: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()},
              str(out_dir / "head.safetensors"))
    bdir = out_dir / "backbone"
    if store_backbone:
        model.backbone.save_pretrained(bdir)
    model.tokenizer.save_pretrained(bdir)
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "metrics.json", metrics)


def load_reward_model(artifact_dir: Path | str, *, device: str = "cpu") -> RewardModel:
    """Reload a saved reward model (eval mode) with its normalisation stats attached."""
    root = Path(artifact_dir)
    config = json.loads((root / "config.json").read_text())
    art = config["artifact"]
    if art.get("format") != FORMAT:
        raise ValueError(f"{root} is not a {FORMAT} artifact")
    if art["backbone_stored"]:
        backbone, tok = load_backbone(config["backbone"], source=root / "backbone")
    else:
        src = minilm_path() if config["backbone"] == "minilm" else Path(art["backbone_source"])
        backbone, tok = load_backbone(str(src))
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(root / "backbone")
    model = RewardModel(backbone, tok, pooling=art["pooling"], head_hidden=config["head_hidden"])
    model.head.load_state_dict(load_file(str(root / "head.safetensors")))
    metrics = json.loads((root / "metrics.json").read_text())
    model.reward_mean = float(metrics.get("reward_mean", 0.0))
    model.reward_std = float(metrics.get("reward_std", 1.0)) or 1.0
    model.max_length = int(config["max_length"])
    model.name = str(root)
    return model.to(torch.device(device)).eval()


def score_texts(model: RewardModel, prompts: list[str] | pd.Series, responses: list[str] | pd.Series, *,
                normalize: bool = False, batch_size: int = 64, runtime: Runtime | None = None) -> np.ndarray:
    """Reward of each ``(prompt, response)``; ``normalize=True`` maps with the stored training mean/std."""
    from .loop import predict_rewards

    prompts, responses = list(prompts), list(responses)
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    if not prompts:
        return np.zeros(0)
    dev = next(model.parameters()).device
    rt = runtime or Runtime(dev, "no")
    enc = encode_texts(model.tokenizer, prompts, responses, model.max_length, decoder=model.is_decoder)
    r = predict_rewards(model, enc, rt, batch_size)
    return (r - model.reward_mean) / model.reward_std if normalize else r


def evaluate_saved_model(artifact_dir: Path | str | RewardModel, eval_df: pd.DataFrame, *,
                         num_threads: int | None = 2, batch_size: int = 64) -> dict[str, float]:
    """Held-out accuracy, ECE and loss of a saved model version on ``eval_df`` (same metrics as training)."""
    setup_runtime("cpu", "no", num_threads)
    model = artifact_dir if isinstance(artifact_dir, RewardModel) else load_reward_model(artifact_dir)
    ev = normalize_pairs(eval_df)
    prompts = list(ev["prompt"]) * 2
    r = score_texts(model, prompts, list(ev["chosen"]) + list(ev["rejected"]), batch_size=batch_size)
    n = len(ev)
    return pairwise_metrics(r[:n], r[n:], ev["weight"].to_numpy(), ev["margin"].to_numpy())


def is_better(candidate: dict[str, float], incumbent: dict[str, float] | None, *,
              min_accuracy_gain: float = 0.0, max_calibration_loss: float = 0.02) -> bool:
    """Promotion rule: accuracy up by more than ``min_accuracy_gain`` and ECE not worse by more than
    ``max_calibration_loss``, both measured on the *same* eval set. No incumbent: promote."""
    if incumbent is None:
        return True
    gain = candidate["heldout_accuracy"] - incumbent["heldout_accuracy"]
    ece_loss = candidate["calibration_error"] - incumbent["calibration_error"]
    return gain > min_accuracy_gain and ece_loss <= max_calibration_loss
