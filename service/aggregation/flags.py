r"""Per-rater audit table and flags: spammers, too-fast raters, raters far below consensus.

``rater_flags(df, consensus=None, ...)`` takes the categorical contract ``task, worker, label`` plus an
optional ``seconds`` column (time spent per answer) and returns one row per rater:

- ``n``: answers; ``top_share``: share of the rater's most frequent label; ``entropy``: entropy of the
  rater's label distribution divided by :math:`\log K` (1 = spread evenly over all labels).
- ``accuracy``: share of answers equal to the consensus. Without ``consensus`` it is the
  *leave-one-out* majority vote (the other raters' answers on the task; tasks with no other answer are
  skipped), so a rater is never graded against its own vote.
- ``kappa``: Cohen's κ between the rater and the consensus over the rater's tasks: 0 means the answers
  are independent of the consensus, which is what both constant and random spammers look like.
- ``median_seconds`` when ``seconds`` is given.

Flags (a rater needs ``min_answers`` answers to be flagged at all):

- ``constant``: ``top_share >= constant_share`` and ``kappa <= spam_kappa``;
- ``random``: ``entropy >= uniform_entropy`` and ``kappa <= spam_kappa`` (near-uniform answers that carry
  no information about the consensus);
- ``spammer``: ``constant`` or ``random``;
- ``too_fast``: ``median_seconds < min_seconds`` (only with a ``seconds`` column);
- ``below_consensus``: ``accuracy`` more than ``below_margin`` under the median rater's.

How to read it: a flag is a reason to look, not a verdict; with few answers κ is noisy, hence
``min_answers``. The thresholds are keyword arguments and are returned in ``df.attrs["thresholds"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._data import encode
from .errors import AggregationInputError

__all__ = ["rater_flags"]

FLAG_COLUMNS = ("constant", "random", "spammer", "too_fast", "below_consensus")


def rater_flags(
    df: pd.DataFrame,
    consensus: pd.Series | None = None,
    *,
    min_answers: int = 5,
    constant_share: float = 0.95,
    uniform_entropy: float = 0.7,
    spam_kappa: float = 0.2,
    below_margin: float = 0.25,
    min_seconds: float | None = 3.0,
) -> pd.DataFrame:
    """Per-rater table with the flags described in the module docstring (index ``worker``)."""
    c = encode(df, min_workers=1)
    k, n_w = c.n_classes, c.n_workers
    votes = c.task_class_counts()
    if consensus is not None:
        ci = c.classes.get_indexer(pd.Index(consensus.reindex(c.tasks).to_numpy()))
        ref = ci[c.task]  # -1 where the consensus has no label for the task
    else:
        loo = votes[c.task].copy()
        loo[np.arange(len(c.task)), c.label] -= 1.0
        ref = np.where(loo.sum(axis=1) > 0, np.argmax(loo, axis=1), -1)
    n = np.bincount(c.worker, minlength=n_w).astype(float)
    own = np.bincount(c.worker * k + c.label, minlength=n_w * k).reshape(n_w, k)
    share = own / n[:, None]
    top_share = share.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(share > 0, share * np.log(share), 0.0), axis=1)
    entropy = ent / np.log(k) if k > 1 else np.zeros(n_w)
    has = ref >= 0
    wr, lr, rr = c.worker[has], c.label[has], ref[has]
    m = np.bincount(wr, minlength=n_w).astype(float)
    hit = np.bincount(wr, weights=(lr == rr).astype(float), minlength=n_w)
    accuracy = np.divide(hit, m, out=np.full(n_w, np.nan), where=m > 0)
    pa = np.bincount(wr * k + lr, minlength=n_w * k).reshape(n_w, k) / np.maximum(m, 1)[:, None]
    pb = np.bincount(wr * k + rr, minlength=n_w * k).reshape(n_w, k) / np.maximum(m, 1)[:, None]
    pe = (pa * pb).sum(axis=1)
    kappa = np.divide(accuracy - pe, 1.0 - pe, out=np.zeros(n_w), where=(pe < 1 - 1e-12) & (m > 0))
    out = pd.DataFrame({"n": n.astype(int), "top_share": top_share, "entropy": entropy, "accuracy": accuracy,
                        "kappa": kappa}, index=c.workers)
    enough = out["n"] >= min_answers
    out["constant"] = enough & (out["top_share"] >= constant_share) & (out["kappa"] <= spam_kappa)
    out["random"] = enough & (out["entropy"] >= uniform_entropy) & (out["kappa"] <= spam_kappa)
    out["spammer"] = out["constant"] | out["random"]
    if "seconds" in df.columns:
        secs = pd.to_numeric(df["seconds"], errors="coerce")
        if secs.isna().all():
            raise AggregationInputError("column 'seconds' holds no numbers", field="seconds")
        out["median_seconds"] = secs.groupby(c.workers.to_numpy()[c.worker]).median().reindex(c.workers).to_numpy()
        out["too_fast"] = enough & (out["median_seconds"] < min_seconds) if min_seconds is not None else False
    else:
        out["too_fast"] = False
    med = float(np.nanmedian(accuracy)) if np.isfinite(accuracy).any() else np.nan
    out["below_consensus"] = enough & (out["accuracy"] < med - below_margin)
    out["flags"] = [",".join(f for f in FLAG_COLUMNS if row[f]) for _, row in out[list(FLAG_COLUMNS)].iterrows()]
    out.attrs["thresholds"] = {"min_answers": min_answers, "constant_share": constant_share,
                               "uniform_entropy": uniform_entropy, "spam_kappa": spam_kappa,
                               "below_margin": below_margin, "min_seconds": min_seconds,
                               "median_accuracy": med}
    return out
