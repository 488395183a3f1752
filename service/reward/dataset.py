"""Preference-pair datasets: pure pandas, no database.

The pairs contract (what :func:`service.reward.train_reward_model` reads)::

    prompt: str, chosen: str, rejected: str        required
    weight: float in [0, 1]                         soft label P(chosen is better); default 1.0
    margin: float >= 0                              required reward gap; default 0.0
    sample_weight: float >= 0                       importance of the pair in the loss; default 1.0

``weight`` is a *label*, ``sample_weight`` is an *importance*: a k-way ranking expands into many pairs
whose soft labels are all 1 but whose importances are scaled down (see :func:`rankings_to_pairs`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "PAIR_COLUMNS",
    "normalize_pairs",
    "rankings_to_pairs",
    "likert_to_margin",
    "likert_to_pairs",
    "posterior_to_pairs",
    "pairs_hash",
    "export_trl",
    "export_dpo",
    "read_pairs",
]

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def normalize_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a pairs frame and fill the optional columns; returns a new frame with a fresh index."""
    missing = [c for c in PAIR_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"pairs frame lacks columns {missing}; needs {list(PAIR_COLUMNS)}")
    out = pd.DataFrame({c: df[c].astype(str).to_numpy() for c in PAIR_COLUMNS})
    for col, default in (("weight", 1.0), ("margin", 0.0), ("sample_weight", 1.0)):
        vals = df[col].astype(float).to_numpy() if col in df.columns else np.full(len(df), default)
        if np.isnan(vals).any():
            raise ValueError(f"column {col!r} has missing values")
        out[col] = vals
    if ((out["weight"] < 0) | (out["weight"] > 1)).any():
        raise ValueError("weight (soft label) must lie in [0, 1]")
    if (out["margin"] < 0).any() or (out["sample_weight"] < 0).any():
        raise ValueError("margin and sample_weight must be >= 0")
    return out


def rankings_to_pairs(df: pd.DataFrame, *, ranking_col: str = "ranking",
                      normalize: Literal["per_response", "per_ranking", "none"] = "per_response",
                      ) -> pd.DataFrame:
    """Expand k-way rankings (a list of responses, best first) into all ``k(k-1)/2`` pairs.

    A ranking of k responses yields k(k-1)/2 pairs, all implied by only k-1 adjacent judgments; counting
    each pair fully would weight a 4-way ranking 6x a single pairwise judgment. ``sample_weight`` fixes that:

    - ``"per_response"`` (default): ``1/(k-1)``. Each response takes part in k-1 pairs, so every response
      contributes total weight 1 and the ranking k/2, which equals k/2 independent pairwise judgments.
    - ``"per_ranking"``: ``2/(k(k-1))``, the whole ranking weighs 1 (InstructGPT's per-prompt batching).
    - ``"none"``: 1 for every pair.

    Soft labels (``weight``) stay 1: the ranking says ``chosen`` is better. Rankings with fewer than two
    distinct responses produce nothing. Extra columns of the input (ids, rater) are carried over.
    """
    rows: list[dict[str, object]] = []
    extra = [c for c in df.columns if c not in (ranking_col, "prompt")]
    for rec in df.to_dict("records"):
        ranking = list(dict.fromkeys(rec[ranking_col]))  # drop repeated responses, keep order
        k = len(ranking)
        if k < 2:
            continue
        sw = {"per_response": 1.0 / (k - 1), "per_ranking": 2.0 / (k * (k - 1)), "none": 1.0}[normalize]
        for i, j in combinations(range(k), 2):
            row = {"prompt": rec["prompt"], "chosen": ranking[i], "rejected": ranking[j],
                   "weight": 1.0, "margin": 0.0, "sample_weight": sw, "rank_gap": j - i}
            row.update({c: rec[c] for c in extra})
            rows.append(row)
    cols = ["prompt", "chosen", "rejected", "weight", "margin", "sample_weight", "rank_gap", *extra]
    return pd.DataFrame(rows, columns=cols)


def likert_to_margin(strength: Iterable[float] | pd.Series, *, levels: int = 4,
                     max_margin: float = 1.0) -> np.ndarray:
    """Map preference strength ``1..levels`` (1 = negligibly better) linearly onto ``[0, max_margin]``.

    Llama 2's four levels (negligibly / slightly / better / significantly better) give margins
    0, 1/3, 2/3, 1 with the defaults.
    """
    s = np.asarray(list(strength) if not isinstance(strength, pd.Series) else strength, dtype=float)
    if ((s < 1) | (s > levels)).any():
        raise ValueError(f"strength must lie in 1..{levels}")
    return max_margin * (s - 1.0) / max(levels - 1, 1)


def likert_to_pairs(df: pd.DataFrame, *, a_col: str = "response_a", b_col: str = "response_b",
                    score_col: str = "score", scale: int = 3, max_margin: float = 1.0) -> pd.DataFrame:
    """Signed Likert judgments (``-scale..scale``, > 0: A better) into pairs.

    The better side becomes ``chosen``; ``|score|`` maps to a margin via :func:`likert_to_margin` with
    ``levels = scale`` (``|score| = 1`` -> margin 0). A tie (score 0) becomes a pair with soft label 0.5.
    """
    score = df[score_col].astype(float).to_numpy()
    if (np.abs(score) > scale).any():
        raise ValueError(f"score must lie in -{scale}..{scale}")
    a_better = score >= 0
    out = pd.DataFrame({
        "prompt": df["prompt"].to_numpy(),
        "chosen": np.where(a_better, df[a_col], df[b_col]),
        "rejected": np.where(a_better, df[b_col], df[a_col]),
        "weight": np.where(score == 0, 0.5, 1.0),
        "margin": np.where(score == 0, 0.0,
                           likert_to_margin(np.clip(np.abs(score), 1, scale), levels=scale,
                                            max_margin=max_margin)),
    })
    return out


def posterior_to_pairs(df: pd.DataFrame, *, prob_col: str = "p_a", a_col: str = "response_a",
                       b_col: str = "response_b", min_confidence: float = 0.5) -> pd.DataFrame:
    """Consensus posteriors ``P(A better)`` (e.g. from Dawid–Skene) into soft-labelled pairs.

    The more probable side becomes ``chosen`` and ``weight = max(p, 1 - p)``, so accuracy metrics read the
    pair the consensus way. Pairs with ``max(p, 1-p) < min_confidence`` are dropped.
    """
    p = df[prob_col].astype(float).to_numpy()
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"{prob_col} must lie in [0, 1]")
    a_better = p >= 0.5
    out = pd.DataFrame({
        "prompt": df["prompt"].to_numpy(),
        "chosen": np.where(a_better, df[a_col], df[b_col]),
        "rejected": np.where(a_better, df[b_col], df[a_col]),
        "weight": np.maximum(p, 1.0 - p),
        "margin": 0.0,
    })
    return out[out["weight"] >= min_confidence].reset_index(drop=True)


def pairs_hash(df: pd.DataFrame, *, ordered: bool = False) -> str:
    """SHA-256 of a pairs frame's content: prompt, chosen, rejected, weight, margin, sample_weight.

    Floats are rounded to 6 decimals; missing optional columns hash as their defaults, so a frame with and
    without an all-default ``weight`` column hash alike. With ``ordered=False`` (default) row order does not
    matter. Pure ``hashlib``: stable across processes, platforms and pandas versions.
    """
    norm = normalize_pairs(df)
    digests = []
    for p, c, r, w, m, s in norm[["prompt", "chosen", "rejected", "weight", "margin",
                                   "sample_weight"]].itertuples(index=False):
        row = json.dumps([p, c, r, round(w, 6), round(m, 6), round(s, 6)], ensure_ascii=False)
        digests.append(hashlib.sha256(row.encode()).digest())
    if not ordered:
        digests.sort()
    h = hashlib.sha256(b"crowdbridge-pairs-v1")
    for d in digests:
        h.update(d)
    return h.hexdigest()


def _write(df: pd.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix in (".jsonl", ".json"):
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        raise ValueError("export path must end in .jsonl or .parquet")
    return path


def export_trl(df: pd.DataFrame, path: Path | str, *, with_margin: bool = True) -> Path:
    """Write TRL ``RewardTrainer``-ready rows: explicit ``prompt``, ``chosen``, ``rejected`` (+ ``margin``).

    Soft labels have no TRL column: pairs with ``weight < 0.5`` are flipped and ties (0.5) dropped.
    """
    norm = _oriented(normalize_pairs(df), min_confidence=0.5, drop_ties=True)
    cols = list(PAIR_COLUMNS) + (["margin"] if with_margin and (norm["margin"] != 0).any() else [])
    return _write(norm[cols], Path(path))


def export_dpo(df: pd.DataFrame, path: Path | str, *, min_confidence: float = 0.5) -> Path:
    """Write DPO-ready rows (``prompt``, ``chosen``, ``rejected``), oriented by the soft label.

    Pairs below ``min_confidence`` (``max(w, 1 - w)``) and ties are dropped; DPO has no per-pair soft label
    (use ``label_smoothing`` for global label noise instead).
    """
    norm = _oriented(normalize_pairs(df), min_confidence=min_confidence, drop_ties=True)
    return _write(norm[list(PAIR_COLUMNS)], Path(path))


def _oriented(norm: pd.DataFrame, *, min_confidence: float, drop_ties: bool) -> pd.DataFrame:
    flip = norm["weight"] < 0.5
    out = norm.copy()
    out.loc[flip, ["chosen", "rejected"]] = norm.loc[flip, ["rejected", "chosen"]].to_numpy()
    out["weight"] = np.maximum(norm["weight"], 1.0 - norm["weight"])
    keep = out["weight"] >= min_confidence
    if drop_ties:
        keep &= out["weight"] > 0.5
    return out[keep].reset_index(drop=True)


def read_pairs(path: Path | str, limit: int | None = None) -> pd.DataFrame:
    """Read a pairs JSONL/Parquet file (e.g. the hh-rlhf slice) into a normalised frame."""
    path = Path(path)
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_json(path, lines=True)
    if limit is not None:
        df = df.head(limit)
    return normalize_pairs(df)
