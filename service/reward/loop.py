"""Full fine-tuning loop: bucketed dynamic padding, fused AdamW, autocast, checkpoint/resume, DDP.

Each step runs chosen and rejected sequences of ``batch_size`` pairs through the model as one padded batch
of ``2 * batch_size`` (one forward, one backward). Checkpoints hold model, optimizer, scheduler, grad-scaler
and RNG state plus the step; batch order is a pure function of ``(seed, epoch)``, so a resumed run skips the
finished batches of the current epoch and continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import RewardConfig
from .metrics import bt_loss
from .modeling import EncodedPairs, RewardModel, pad_batch, pad_id_of
from .runtime import Runtime, autocast, bucketed_batches, sorted_batches

__all__ = ["train_full", "predict_rewards", "latest_checkpoint"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int, float], None]


def _optimizer(model: torch.nn.Module, cfg: RewardConfig, rt: Runtime) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # fused AdamW: ~4x faster optimizer step on a CPU (models.md), also on CUDA
        return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=cfg.learning_rate)


def _schedule(opt: torch.optim.Optimizer, total: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    warm = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = [p for p in (Path(out_dir) / "checkpoints").glob("step-*") if (p / "state.pt").exists()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1]), default=None)


def _save_checkpoint(out_dir: Path, step: int, model: RewardModel, opt: Any, sched: Any, scaler: Any) -> None:
    root = Path(out_dir) / "checkpoints"
    tmp = root / f".tmp-step-{step}"
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save({
        "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler else None,
        "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
    }, tmp / "state.pt")
    final = root / f"step-{step}"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)  # atomic: a crash mid-save leaves no half checkpoint behind
    for old in root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def _tensor(df: pd.DataFrame, col: str, idx: np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.tensor(df[col].to_numpy(dtype=np.float32)[idx], device=dev)


def train_full(model: RewardModel, cfg: RewardConfig, rt: Runtime, train_df: pd.DataFrame,
               enc_c: EncodedPairs, enc_r: EncodedPairs, out_dir: Path,
               progress: Progress | None = None) -> dict[str, float]:
    """Fine-tune ``model`` in place; returns ``train_loss``, ``pairs_per_second``, ``steps``, padding share."""
    assert cfg.epochs is not None and cfg.learning_rate is not None
    pad = pad_id_of(model.tokenizer)
    lengths = np.maximum(enc_c.lengths, enc_r.lengths)
    # every rank must take the same number of steps (DDP all-reduces each one): leftover batches are dropped
    per_epoch = math.ceil(len(train_df) / cfg.batch_size) // rt.world_size
    if per_epoch < 1:
        raise ValueError(f"{len(train_df)} pairs cannot fill one batch on each of {rt.world_size} ranks")
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    model.to(rt.device).train()
    opt = _optimizer(model, cfg, rt)
    sched = _schedule(opt, total, cfg.warmup_ratio)
    scaler = torch.amp.GradScaler("cuda") if rt.precision == "fp16" else None
    step = 0
    ckpt = latest_checkpoint(out_dir) if cfg.resume else None
    if ckpt is not None:
        state = torch.load(ckpt / "state.pt", map_location=rt.device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if scaler and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        step = int(state["step"])
        log.info("resumed from %s at step %d/%d", ckpt, step, total)
    net: torch.nn.Module = model
    if rt.distributed:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    params = [p for p in model.parameters() if p.requires_grad]
    losses: list[float] = []
    pairs = real_tokens = all_tokens = 0
    t0 = time.perf_counter()
    while step < total:
        epoch, offset = divmod(step, per_epoch)
        batches = bucketed_batches(lengths, cfg.batch_size, cfg.bucket_size, cfg.seed, epoch)
        batches = batches[rt.rank::rt.world_size][:per_epoch]
        for idx in batches[offset:]:
            if step >= total:
                break
            ids_, mask = pad_batch([enc_c.ids[i] for i in idx] + [enc_r.ids[i] for i in idx], pad)
            real_tokens += int(mask.sum())
            all_tokens += mask.numel()
            ids_, mask = ids_.to(rt.device, non_blocking=True), mask.to(rt.device, non_blocking=True)
            with autocast(rt):
                rewards = net(ids_, mask).float()
            b = len(idx)
            loss = bt_loss(rewards[:b], rewards[b:], _tensor(train_df, "weight", idx, rt.device),
                           _tensor(train_df, "margin", idx, rt.device),
                           _tensor(train_df, "sample_weight", idx, rt.device), cfg.center_rewards_coefficient)
            opt.zero_grad(set_to_none=True)
            if scaler:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            sched.step()
            step += 1
            pairs += b
            losses.append(float(loss.detach()))
            if rt.is_main and (step % cfg.logging_steps == 0 or step == total):
                log.info("step %d/%d loss %.4f lr %.2e", step, total, np.mean(losses[-cfg.logging_steps:]),
                         sched.get_last_lr()[0])
            if progress is not None and rt.is_main:
                progress(step, total, losses[-1])
            if cfg.save_steps and step % cfg.save_steps == 0 and step < total and rt.is_main:
                _save_checkpoint(out_dir, step, model, opt, sched, scaler)
    elapsed = time.perf_counter() - t0
    if rt.distributed:
        torch.distributed.barrier()
    return {
        "train_loss": float(np.mean(losses)) if losses else float("nan"),
        "final_loss": float(np.mean(losses[-max(1, per_epoch // 10):])) if losses else float("nan"),
        "pairs_per_second": pairs * rt.world_size / elapsed if elapsed > 0 and pairs else float("nan"),
        "train_seconds": elapsed,
        "steps": float(step),
        "padding_share": 1.0 - real_tokens / all_tokens if all_tokens else 0.0,
    }


@torch.inference_mode()
def predict_rewards(model: RewardModel, enc: EncodedPairs, rt: Runtime, batch_size: int = 64) -> np.ndarray:
    """Rewards for pre-tokenised sequences, batched by length, returned in input order."""
    model.to(rt.device).eval()
    out = np.empty(len(enc.ids), dtype=np.float64)
    pad = pad_id_of(model.tokenizer)
    for idx in sorted_batches(enc.lengths, batch_size):
        ids, mask = pad_batch([enc.ids[i] for i in idx], pad)
        with autocast(rt):
            out[idx] = model(ids.to(rt.device), mask.to(rt.device)).float().cpu().numpy()
    return out
