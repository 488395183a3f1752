"""Frozen-encoder mode: cached pooled embeddings, and a scalar head trained on them.

The embedding of a ``(prompt, response)`` sequence is the backbone's pooled hidden state, exactly what
the full model feeds its head; a frozen-mode artifact therefore scores texts through the same
:class:`~service.reward.modeling.RewardModel` as a fully fine-tuned one.

Cache layout: ``cache_dir/<key>/shard-*.npz`` with arrays ``keys`` (hex text hashes) and ``emb``, where
``key = sha256(backbone fingerprint, max_length, pooling)`` and a text hash is
``sha256(prompt \\x1f response)``. Shards are append-only; a run writes one shard with what it computed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import RewardConfig
from .metrics import bt_loss
from .modeling import RewardModel, backbone_fingerprint, encode_texts, pad_batch, pad_id_of
from .runtime import Runtime, autocast, sorted_batches

__all__ = ["EmbeddingCache", "embed_texts", "train_frozen"]

log = logging.getLogger(__name__)


def text_hashes(prompts: list[str], responses: list[str]) -> list[str]:
    return [hashlib.sha256(f"{p}\x1f{r}".encode()).hexdigest()[:32] for p, r in zip(prompts, responses)]


class EmbeddingCache:
    """On-disk map from text hash to embedding for one (backbone, max_length, pooling)."""

    def __init__(self, root: Path | None, key: str) -> None:
        self.dir = None if root is None else Path(root) / key
        self._mem: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._mem is None:
            self._mem = {}
            if self.dir is not None and self.dir.is_dir():
                for shard in sorted(self.dir.glob("shard-*.npz")):
                    try:
                        with np.load(shard) as z:
                            self._mem.update(zip(z["keys"].tolist(), z["emb"]))
                    except (OSError, ValueError, KeyError):
                        log.warning("ignoring unreadable cache shard %s", shard)
        return self._mem

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        mem = self._load()
        return {k: mem[k] for k in keys if k in mem}

    def put(self, keys: list[str], emb: np.ndarray) -> None:
        mem = self._load()
        mem.update(zip(keys, emb))
        if self.dir is None or not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".tmp-{uuid.uuid4().hex}.npz"
        np.savez(tmp, keys=np.array(keys), emb=emb)
        os.replace(tmp, self.dir / f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz")


def cache_for(model: RewardModel, cfg: RewardConfig) -> EmbeddingCache:
    fp = backbone_fingerprint(cfg.backbone, model.backbone)
    key = hashlib.sha256(f"{fp}|{cfg.max_length}|{model.pooling}".encode()).hexdigest()[:24]
    return EmbeddingCache(Path(cfg.cache_dir) if cfg.cache_dir else None, key)


@torch.inference_mode()
def embed_texts(model: RewardModel, rt: Runtime, prompts: list[str], responses: list[str], *,
                max_length: int, batch_size: int, cache: EmbeddingCache) -> tuple[np.ndarray, int]:
    """Pooled embeddings ``(n, hidden)`` float32; returns them and how many were computed (cache misses)."""
    keys = text_hashes(prompts, responses)
    have = cache.get(keys)
    todo: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in have and k not in todo:
            todo[k] = i
    if todo:
        rows = list(todo.values())
        enc = encode_texts(model.tokenizer, [prompts[i] for i in rows], [responses[i] for i in rows],
                           max_length, decoder=model.is_decoder)
        model.backbone.to(rt.device).eval()
        pad = pad_id_of(model.tokenizer)
        out = np.empty((len(rows), model.backbone.config.hidden_size), dtype=np.float32)
        for idx in sorted_batches(enc.lengths, batch_size):
            ids, mask = pad_batch([enc.ids[i] for i in idx], pad)
            with autocast(rt):
                out[idx] = model.embed(ids.to(rt.device), mask.to(rt.device)).float().cpu().numpy()
        cache.put(list(todo), out)
        have.update(zip(todo, out))
    return np.stack([have[k] for k in keys]) if keys else np.zeros((0, 1), np.float32), len(todo)


def _rewards(model: RewardModel, emb: np.ndarray, dev: torch.device) -> np.ndarray:
    if len(emb) == 0:  # no evaluation pairs: embed_texts gives a (0, 1) placeholder
        return np.zeros(0)
    with torch.no_grad():
        return model.head(torch.from_numpy(emb).to(dev)).double().cpu().numpy()


def train_frozen(model: RewardModel, cfg: RewardConfig, rt: Runtime, train: pd.DataFrame,
                 evald: pd.DataFrame,
                 progress: Callable[[int, int, float], None] | None = None) -> tuple[dict[str, float], dict]:
    """Train ``model.head`` on cached embeddings; returns metrics and rewards of train/eval pairs."""
    assert cfg.epochs is not None and cfg.learning_rate is not None
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    cache = cache_for(model, cfg)
    n_tr, n_ev = len(train), len(evald)

    def embed(frame: pd.DataFrame) -> tuple[np.ndarray, int, float]:
        t0 = time.perf_counter()
        emb, computed = embed_texts(model, rt, list(frame["prompt"]) * 2,
                                    list(frame["chosen"]) + list(frame["rejected"]),
                                    max_length=cfg.max_length, batch_size=cfg.embed_batch_size, cache=cache)
        return emb, computed, time.perf_counter() - t0

    # timed apart: training throughput counts the training texts' embedding, not the evaluation's
    train_emb, computed, embed_s = embed(train)
    eval_emb, eval_computed, eval_embed_s = embed(evald)
    log.info("embedded %d training sequences (%d computed) in %.1fs, %d evaluation sequences (%d computed) "
             "in %.1fs", 2 * n_tr, computed, embed_s, 2 * n_ev, eval_computed, eval_embed_s)
    ec, er = train_emb[:n_tr], train_emb[n_tr:]
    head = model.head.to(rt.device).train()
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    per_epoch = -(-n_tr // cfg.batch_size)
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(total, 1)))
    tc, tr = torch.from_numpy(ec).to(rt.device), torch.from_numpy(er).to(rt.device)
    cols = {c: torch.tensor(train[c].to_numpy(dtype=np.float32), device=rt.device)
            for c in ("weight", "margin", "sample_weight")}
    losses: list[float] = []
    step = 0
    t1 = time.perf_counter()
    while step < total:
        perm = torch.from_numpy(np.random.default_rng([cfg.seed, step // per_epoch]).permutation(n_tr))
        for i in range(0, n_tr, cfg.batch_size):
            if step >= total:
                break
            idx = perm[i:i + cfg.batch_size].to(rt.device)
            loss = bt_loss(head(tc[idx]), head(tr[idx]), cols["weight"][idx], cols["margin"][idx],
                           cols["sample_weight"][idx], cfg.center_rewards_coefficient)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if step % (cfg.logging_steps * 10) == 0 or step == total:
                log.info("head step %d/%d loss %.4f", step, total, np.mean(losses[-per_epoch:]))
            if progress is not None:
                progress(step, total, losses[-1])
    train_s = time.perf_counter() - t1
    head.eval()
    pairs = min(step * cfg.batch_size, n_tr * cfg.epochs)
    stats = {
        "train_loss": float(np.mean(losses)) if losses else float("nan"),
        "final_loss": float(np.mean(losses[-per_epoch:])) if losses else float("nan"),
        "pairs_per_second": pairs / train_s if train_s > 0 else float("nan"),
        "end_to_end_pairs_per_second": pairs / (train_s + embed_s),
        "embed_seconds": embed_s,
        "eval_embed_seconds": eval_embed_s,
        "embedded_sequences": float(computed + eval_computed),
        "cached_sequences": float(2 * (n_tr + n_ev) - computed - eval_computed),
        "train_seconds": train_s,
        "steps": float(step),
    }
    rewards = {
        "train_chosen": _rewards(model, ec, rt.device), "train_rejected": _rewards(model, er, rt.device),
        "eval_chosen": _rewards(model, eval_emb[:n_ev], rt.device),
        "eval_rejected": _rewards(model, eval_emb[n_ev:], rt.device),
    }
    return stats, rewards
