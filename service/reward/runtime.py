"""Devices, precision, seeding, threads, process groups, and length-sorted batching.

Multi-GPU: launch the same entry point with ``torchrun --nproc_per_node N``; :func:`init_distributed` reads
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, joins the process group (NCCL on CUDA, Gloo on CPU) and the training
loop wraps the model in ``DistributedDataParallel`` and gives each rank every N-th batch. (HF ``accelerate``
is not a dependency: the installed set does not include it, and DDP is all this loop needs.)
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Runtime", "setup_runtime", "seed_everything", "autocast", "bucketed_batches", "sorted_batches"]


@dataclass
class Runtime:
    device: torch.device
    precision: str  # "no" | "bf16" | "fp16"
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def init_distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return rank, world, local


def setup_runtime(device: str, mixed_precision: str, num_threads: int | None) -> Runtime:
    if num_threads is not None and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    rank, world, local = init_distributed()
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but CUDA is not available")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        dev = torch.device("cpu")
    precision = mixed_precision
    if precision == "auto":
        if use_cuda:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_bf16() else "no"
    if precision == "fp16" and not use_cuda:
        raise ValueError("fp16 mixed precision needs CUDA")
    return Runtime(dev, precision, rank, world)


def cpu_has_bf16() -> bool:
    """Native bf16 matmuls on this CPU (AVX512-BF16 / AMX): autocast is then ~1.3-3x faster."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(rt: Runtime) -> contextlib.AbstractContextManager[object]:
    if rt.precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if rt.precision == "bf16" else torch.float16
    return torch.autocast(device_type=rt.device.type, dtype=dtype)


def bucketed_batches(lengths: np.ndarray, batch_size: int, bucket_size: int, seed: int,
                     epoch: int) -> list[np.ndarray]:
    """Shuffled batches of similar length, deterministic in ``(seed, epoch)`` (so resume can skip ahead).

    Shuffle, cut into chunks of ``bucket_size * batch_size``, sort each chunk by length, batch, shuffle the
    batches. Padding falls from ~40% to ~10% of tokens on hh-rlhf at 256 tokens.
    """
    rng = np.random.default_rng([seed, epoch])
    idx = rng.permutation(len(lengths))
    if bucket_size > 1:
        chunk = batch_size * bucket_size
        parts = [idx[i:i + chunk] for i in range(0, len(idx), chunk)]
        idx = np.concatenate([p[np.argsort(-lengths[p], kind="stable")] for p in parts]) if parts else idx
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Inference batches over indices sorted by length (longest first): minimal padding."""
    idx = np.argsort(-lengths, kind="stable")
    for i in range(0, len(idx), batch_size):
        yield idx[i:i + batch_size]
