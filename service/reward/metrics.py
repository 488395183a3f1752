"""Bradley–Terry loss with soft labels and margins, and pairwise evaluation metrics.

With ``d = r_chosen - r_rejected``, soft label ``w = P(chosen is better)`` and margin ``m >= 0``::

    loss = -( w * log σ(d - m) + (1 - w) * log σ(-d - m) )

``w = 1, m = 0`` is the usual Bradley–Terry loss ``-log σ(d)``; ``w = 1, m > 0`` is TRL's margin loss
``-log σ(d - m)``. The margin is asked for in whichever direction the label points, so a soft label
``w = 0.5`` is minimised at ``d = 0``. All functions are pure (numpy or torch in, numbers out).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["bt_loss", "pairwise_accuracy", "expected_calibration_error", "pairwise_metrics"]


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, weight: torch.Tensor | None = None,
            margin: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None,
            center_coef: float | None = None) -> torch.Tensor:
    """Soft-label Bradley–Terry loss (see module docstring), ``mean(sample_weight * loss_i)`` over the batch.

    ``sample_weight`` scales a pair's importance; the mean divides by the batch size, not by the sum of
    importances, so down-weighted pairs (from expanded rankings) really count less.
    """
    d = r_chosen - r_rejected
    w = torch.ones_like(d) if weight is None else weight.to(d.dtype)
    m = torch.zeros_like(d) if margin is None else margin.to(d.dtype)
    per_pair = -(w * F.logsigmoid(d - m) + (1.0 - w) * F.logsigmoid(-d - m))
    if sample_weight is not None:
        per_pair = per_pair * sample_weight.to(d.dtype)
    loss = per_pair.mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def pairwise_accuracy(d: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Share of pairs ranked the labelled way (ties count half); soft labels give expected accuracy."""
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    w = np.ones_like(d) if weight is None else np.asarray(weight, dtype=np.float64)
    hit = np.where(d > 0, w, np.where(d < 0, 1.0 - w, 0.5))
    return float(hit.mean())


def expected_calibration_error(d: np.ndarray, weight: np.ndarray | None = None, n_bins: int = 10) -> float:
    """Top-label ECE of ``p = σ(d)``, 10 equal-width confidence bins over [0.5, 1].

    Confidence is ``max(p, 1 - p)``; correctness of the predicted side is ``w`` (or ``1 - w``), so soft
    labels are scored by their expectation. 0 is perfectly calibrated.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    w = np.ones_like(d) if weight is None else np.asarray(weight, dtype=np.float64)
    p = 1.0 / (1.0 + np.exp(-d))
    conf = np.maximum(p, 1.0 - p)
    correct = np.where(p >= 0.5, w, 1.0 - w)
    bins = np.minimum(((conf - 0.5) * 2 * n_bins).astype(int), n_bins - 1)
    n = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, correct, n_bins) - np.bincount(bins, conf, n_bins))
    return float(gap.sum() / d.size) if n.sum() else float("nan")


def pairwise_metrics(r_chosen: np.ndarray, r_rejected: np.ndarray, weight: np.ndarray | None = None,
                     margin: np.ndarray | None = None) -> dict[str, float]:
    """heldout_accuracy, calibration_error, eval_loss and reward mean/std for one evaluation set."""
    rc, rr = np.asarray(r_chosen, np.float64), np.asarray(r_rejected, np.float64)
    d = rc - rr
    with torch.no_grad():
        loss = bt_loss(torch.from_numpy(rc), torch.from_numpy(rr),
                       None if weight is None else torch.tensor(np.asarray(weight, np.float64)),
                       None if margin is None else torch.tensor(np.asarray(margin, np.float64)))
    both = np.concatenate([rc, rr])
    return {
        "heldout_accuracy": pairwise_accuracy(d, weight),
        "calibration_error": expected_calibration_error(d, weight),
        "eval_loss": float(loss) if d.size else float("nan"),
        "eval_reward_mean": float(both.mean()) if both.size else float("nan"),
        "eval_reward_std": float(both.std()) if both.size else float("nan"),
        "n_eval": float(d.size),
    }
