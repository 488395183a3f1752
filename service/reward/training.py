"""``train_reward_model(config, train_df, eval_df, out_dir) -> TrainResult``: the one entry point.

Thin on purpose: resolve the config, set up device/threads/seed, build the model, hand off to the frozen
(:mod:`.frozen`) or full (:mod:`.loop`) trainer, evaluate, save artifacts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .artifacts import FORMAT, TrainResult, save_artifacts
from .config import RewardConfig
from .dataset import normalize_pairs, pairs_hash
from .frozen import train_frozen
from .loop import predict_rewards, train_full
from .metrics import pairwise_metrics
from .modeling import EncodedPairs, RewardModel, encode_texts, load_backbone, minilm_path
from .runtime import seed_everything, setup_runtime

__all__ = ["train_reward_model"]

log = logging.getLogger(__name__)
NORM_SAMPLE = 128  # full mode: training pairs re-scored after training for reward mean/std


def build_model(cfg: RewardConfig) -> RewardModel:
    backbone, tok = load_backbone(cfg.backbone, seed=cfg.seed)
    model = RewardModel(backbone, tok, pooling=cfg.pooling, head_hidden=cfg.head_hidden, seed=cfg.seed,
                        name=cfg.backbone)
    model.max_length = cfg.max_length
    if cfg.disable_dropout:
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    return model


def train_reward_model(config: RewardConfig, train_df: pd.DataFrame, eval_df: pd.DataFrame,
                       out_dir: Path | str, progress: Callable[[int, int, float], None] | None = None,
                       ) -> TrainResult:
    """Train a reward model on preference pairs and save it to ``out_dir``.

    ``train_df``/``eval_df`` follow the pairs contract of :mod:`service.reward.dataset` (``prompt``,
    ``chosen``, ``rejected``; optional ``weight``, ``margin``, ``sample_weight``). ``progress(step, total,
    loss)`` is called after every optimizer step. With ``config.resume`` a full-mode run continues from the
    latest checkpoint in ``out_dir/checkpoints``.
    """
    t_start = time.perf_counter()
    cfg = config.resolved()
    out_dir = Path(out_dir)
    rt = setup_runtime(cfg.device, cfg.mixed_precision, cfg.num_threads)
    seed_everything(cfg.seed)
    train, evald = normalize_pairs(train_df), normalize_pairs(eval_df)
    if train.empty:
        raise ValueError("train_df has no pairs")
    model = build_model(cfg)
    load_s = time.perf_counter() - t_start
    if cfg.mode == "frozen":
        stats, r = train_frozen(model, cfg, rt, train, evald, progress)
        train_rewards = np.concatenate([r["train_chosen"], r["train_rejected"]])
        ev_c, ev_r = r["eval_chosen"], r["eval_rejected"]
    else:
        dec = model.is_decoder
        enc_c = encode_texts(model.tokenizer, list(train["prompt"]), list(train["chosen"]), cfg.max_length,
                             decoder=dec)
        enc_r = encode_texts(model.tokenizer, list(train["prompt"]), list(train["rejected"]), cfg.max_length,
                             decoder=dec)
        stats = train_full(model, cfg, rt, train, enc_c, enc_r, out_dir, progress)
        sample = np.random.default_rng(cfg.seed).permutation(len(train))[:NORM_SAMPLE]
        train_rewards = predict_rewards(
            model, EncodedPairs([enc_c.ids[i] for i in sample] + [enc_r.ids[i] for i in sample]), rt,
            cfg.embed_batch_size)
        both = predict_rewards(
            model,
            encode_texts(model.tokenizer, list(evald["prompt"]) * 2,
                         list(evald["chosen"]) + list(evald["rejected"]), cfg.max_length, decoder=dec),
            rt, cfg.embed_batch_size) if len(evald) else np.zeros(0)
        ev_c, ev_r = both[: len(evald)], both[len(evald):]
    metrics = pairwise_metrics(ev_c, ev_r, evald["weight"].to_numpy(), evald["margin"].to_numpy())
    metrics.update({k: float(v) for k, v in stats.items()})
    metrics.update({
        "n_train": float(len(train)), "n_eval": float(len(evald)),
        "reward_mean": float(train_rewards.mean()), "reward_std": float(train_rewards.std()) or 1.0,
        "load_seconds": load_s, "total_seconds": time.perf_counter() - t_start,
    })
    store_backbone = cfg.mode == "full" or cfg.backbone == "tiny-bert"
    resolved = cfg.to_dict()
    resolved["artifact"] = {
        "format": FORMAT, "pooling": model.pooling, "is_decoder": model.is_decoder,
        "backbone_stored": store_backbone,
        "backbone_source": None if store_backbone else str(
            minilm_path() if cfg.backbone == "minilm" else Path(cfg.backbone).resolve()),
        "precision": rt.precision, "device": str(rt.device), "world_size": rt.world_size,
        "train_hash": pairs_hash(train), "eval_hash": pairs_hash(evald) if len(evald) else None,
        "torch": torch.__version__,
    }
    if rt.is_main:
        save_artifacts(model, out_dir, resolved, metrics, store_backbone=store_backbone)
        log.info("saved reward model to %s: accuracy %.3f ECE %.3f", out_dir, metrics["heldout_accuracy"],
                 metrics["calibration_error"])
    return TrainResult(metrics=metrics, artifact_dir=out_dir, config=resolved)
