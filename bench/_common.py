"""Shared helpers for the benchmarks: data loading, synthetic generators, timing and peak memory."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRUTH = DATA / "truth-inference"


def categorical_datasets() -> list[str]:
    """Gold datasets with categorical labels, from summary.csv."""
    summary = pd.read_csv(TRUTH / "summary.csv")
    return summary.loc[summary["kind"] == "categorical", "name"].tolist()


def load_truth(name: str) -> tuple[pd.DataFrame, pd.Series]:
    answers = pd.read_csv(TRUTH / name / "answers.csv", dtype=str)
    gold = pd.read_csv(TRUTH / name / "gold.csv", dtype=str).set_index("task")["label"]
    return answers[["task", "worker", "label"]], gold


def accuracy(labels: pd.Series, gold: pd.Series) -> float:
    """Accuracy over the gold tasks that have answers (gold may cover tasks nobody labelled)."""
    common = gold.index.intersection(labels.index)
    return float((labels.reindex(common).astype(str) == gold.reindex(common).astype(str)).mean())


def synthetic_labels(
    n_tasks: int = 100_000, per_task: int = 10, n_workers: int = 2_000, n_classes: int = 5, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """Dawid–Skene-style crowd: each rater has accuracy ~ Beta(2.5, 2.5) and its own Dirichlet(1) spread of
    errors over the wrong classes; 10% of raters answer uniformly at random. String ids."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    acc = rng.beta(2.5, 2.5, n_workers)
    spam = rng.random(n_workers) < 0.10
    acc[spam] = 1.0 / n_classes
    err = rng.dirichlet(np.ones(n_classes - 1), size=(n_workers, n_classes))
    err[spam] = 1.0 / (n_classes - 1)
    task = np.repeat(np.arange(n_tasks), per_task)
    worker = np.argsort(rng.random((n_tasks, n_workers)), axis=1)[:, :per_task].ravel() if n_workers <= 64 else \
        _sample_workers(rng, n_tasks, per_task, n_workers)
    z = truth[task]
    right = rng.random(len(task)) < acc[worker]
    pick = (err[worker, z].cumsum(axis=1) > rng.random(len(task))[:, None]).argmax(axis=1)
    wrong = pick + (pick >= z)
    label = np.where(right, z, wrong)
    df = pd.DataFrame({
        "task": _ids("t", task), "worker": _ids("w", worker), "label": _ids("c", label),
    })
    gold = pd.Series(_ids("c", truth), index=pd.Index(_ids("t", np.arange(n_tasks)), name="task"), name="label")
    return df, gold


def _sample_workers(rng: np.random.Generator, n_tasks: int, per_task: int, n_workers: int) -> np.ndarray:
    out = rng.integers(0, n_workers, (n_tasks, per_task))
    for _ in range(10):  # resample duplicates within a task
        s = np.sort(out, axis=1)
        dup = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not dup.any():
            break
        out[dup] = rng.integers(0, n_workers, (int(dup.sum()), per_task))
    return out.ravel()


def _ids(prefix: str, codes: np.ndarray) -> np.ndarray:
    return (prefix + pd.Series(codes).astype(str)).to_numpy(object)


def synthetic_pairs(
    n_items: int = 10_000, n_pairs: int = 1_000_000, n_workers: int = 500, seed: int = 0, tie_rate: float = 0.0
) -> tuple[pd.DataFrame, pd.Series]:
    """Bradley–Terry comparisons of random pairs with scores ~ N(0, 1); 20% of raters flip coins."""
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 1, n_items)
    left = rng.integers(0, n_items, n_pairs)
    right = (left + rng.integers(1, n_items, n_pairs)) % n_items
    worker = rng.integers(0, n_workers, n_pairs)
    noisy = (rng.random(n_workers) < 0.2)[worker]
    p = 1 / (1 + np.exp(score[right] - score[left]))
    p = np.where(noisy, 0.5, p)
    left_wins = rng.random(n_pairs) < p
    ids_l, ids_r = _ids("i", left), _ids("i", right)
    winner = np.where(left_wins, "left", "right").astype(object)
    if tie_rate:
        winner[rng.random(n_pairs) < tie_rate] = "tie"
    df = pd.DataFrame({"worker": _ids("w", worker), "left": ids_l, "right": ids_r, "winner": winner})
    return df, pd.Series(score, index=pd.Index(_ids("i", np.arange(n_items)), name="item"), name="score")


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """Run ``fn`` ``repeat`` times; return the last result and the median wall time."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def anchor_python() -> str | None:
    """The interpreter of the anchor venv (crowd-kit, choix), or None if absent."""
    path = os.environ.get("BENCH_ANCHOR_PYTHON", "/work/.venvs/bench-anchors/bin/python")
    return path if Path(path).exists() else None
