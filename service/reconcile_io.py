"""Reconcile and audit judgments from files (vendor exports, "scores in a spreadsheet").

Inputs are CSV (``.csv``, ``.tsv``), JSON Lines (``.jsonl``, ``.ndjson``) or Parquet (``.parquet``), one
row per answer, with the columns of the kind:

=============  ===============================  ====================================================
kind           columns                          methods (``auto`` picks one and says why)
=============  ===============================  ====================================================
categorical    ``worker, task, label``          mv, wawa, ds, onecoin_ds, glad, mace, auto
pairwise       ``worker, left, right, winner``  bt, noisy_bt, auto (winner: left|right|tie|item id)
ranking        ``worker, task, ranking``        plackett_luce, ranked_pairs, borda, auto ("C>A>B")
rating         ``worker, task, score``          ordinal, calibrated, auto
=============  ===============================  ====================================================

Gold files: categorical ``task, label``; pairwise ``item, score`` (accuracy is Spearman's ρ);
ranking ``task, ranking`` (accuracy is the share of exact consensus rankings); rating ``task, score``
(accuracy is the share of exact ordinal labels, or ρ for ``calibrated``).

Bad input raises ``InputFileError`` (a ``ValueError``) or ``AggregationInputError`` with a message that
says what to fix; the CLI turns both into exit code 2.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from service.aggregation import (
    METHODS,
    AggregationInputError,
    Borda,
    BradleyTerry,
    NoisyBradleyTerry,
    OrdinalConsensus,
    PlackettLuce,
    RankedPairs,
    RaterCalibration,
    cohen_kappa_pairs,
    fit_method,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    percent_agreement,
    rater_flags,
)

__all__ = ["COLUMNS", "InputFileError", "KINDS", "agreement_file", "read_table", "reconcile_file"]

Kind = Literal["categorical", "pairwise", "ranking", "rating"]
KINDS: tuple[str, ...] = ("categorical", "pairwise", "ranking", "rating")
COLUMNS: dict[str, tuple[str, ...]] = {
    "categorical": ("worker", "task", "label"),
    "pairwise": ("worker", "left", "right", "winner"),
    "ranking": ("worker", "task", "ranking"),
    "rating": ("worker", "task", "score"),
}
KIND_METHODS: dict[str, tuple[str, ...]] = {
    "categorical": (*METHODS, "auto"),
    "pairwise": ("bt", "noisy_bt", "auto"),
    "ranking": ("plackett_luce", "ranked_pairs", "borda", "auto"),
    "rating": ("ordinal", "calibrated", "auto"),
}


class InputFileError(ValueError):
    """A file that cannot be read as judgments: missing, unknown format, unreadable, wrong columns."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


def read_table(path: str | Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet as strings-or-numbers; check ``columns`` are present."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file", path=str(p))
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
    try:
        if suffix in (".csv", ".csv.gz"):
            df = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix in (".tsv", ".tsv.gz"):
            df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
        elif suffix in (".jsonl", ".ndjson", ".jsonl.gz"):
            df = pd.read_json(p, lines=True, dtype=False)
        elif suffix == ".parquet":
            df = pd.read_parquet(p)
        else:
            raise InputFileError(f"{p}: unknown format {suffix or '(none)'}; use .csv, .tsv, .jsonl or .parquet",
                                 path=str(p))
    except InputFileError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InputFileError(f"{p}: the file is empty; it needs a header row and judgments", path=str(p)) from exc
    except (ValueError, OSError, ImportError) as exc:
        raise InputFileError(f"{p}: cannot read it as {suffix[1:]} ({exc})", path=str(p)) from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputFileError(f"{p}: missing column(s) {', '.join(missing)}; this kind needs "
                             f"{', '.join(columns)} (found {', '.join(df.columns) or 'none'})", path=str(p))
    if len(df) == 0:
        raise InputFileError(f"{p}: no rows; the file has a header but no judgments", path=str(p))
    for c in columns:
        if c != "score" and df[c].dtype != object:
            df[c] = df[c].astype(str)
    return df


def _check_method(kind: str, method: str) -> None:
    if kind not in KINDS:
        raise InputFileError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    if method not in KIND_METHODS[kind]:
        raise AggregationInputError(f"method {method!r} does not apply to {kind} judgments; choose from "
                                    f"{', '.join(KIND_METHODS[kind])}", field="method")


def _pairwise_auto(df: pd.DataFrame, seed: int = 0) -> tuple[str, str]:
    """BT vs noisy BT by held-out log-likelihood of decisive comparisons (10%)."""
    if df["worker"].nunique() < 2:
        return "bt", "one rater: rater reliabilities cannot be estimated"
    test = np.random.default_rng(seed).random(len(df)) < 0.1
    train, held = df[~test], df[test & df["winner"].isin(["left", "right"]).to_numpy()]
    if len(held) == 0:
        return "bt", "too few comparisons to hold any out; kept bt"
    try:
        bt, nbt = BradleyTerry().fit(train), NoisyBradleyTerry().fit(train)
    except AggregationInputError:
        return "bt", "the comparison graph without the held-out rows is disconnected; kept bt"
    y = (held["winner"] == "left").to_numpy()

    def loglik(scores: pd.Series, eta: np.ndarray) -> float:
        d = scores.reindex(held["left"]).fillna(0).to_numpy() - scores.reindex(held["right"]).fillna(0).to_numpy()
        p = 1 / (1 + np.exp(-d))
        p = eta * p + (1 - eta) * (1 - p)
        return float(np.mean(np.log(np.clip(np.where(y, p, 1 - p), 1e-12, 1))))

    eta = nbt.skills_.reindex(held["worker"]).fillna(nbt.skills_.mean()).to_numpy()
    a, b = loglik(bt.scores_, np.ones(len(held))), loglik(nbt.scores_, eta)
    best = "noisy_bt" if b > a else "bt"
    return best, (f"highest held-out comparison log-likelihood on {len(held)} hidden comparisons "
                  f"(bt {a:.4f}, noisy_bt {b:.4f} per comparison)")


def _fit(kind: str, method: str, df: pd.DataFrame) -> tuple[str, pd.DataFrame, int, dict[str, Any]]:
    """(method used, output frame, n_tasks, extra) for one kind."""
    extra: dict[str, Any] = {}
    if kind == "categorical":
        res = fit_method(method, df[["task", "worker", "label"]])
        if method == "auto":
            extra = {"reason": res.params["reason"], "scores": res.params["scores"]}
        out = pd.DataFrame({"task": res.labels.index, "label": res.labels.to_numpy(),
                            "confidence": res.probas.max(axis=1).to_numpy()})
        for c in res.probas.columns:
            out[f"p_{c}"] = res.probas[c].to_numpy()
        return res.method, out, len(out), extra
    if kind == "pairwise":
        if method == "auto":
            method, extra["reason"] = _pairwise_auto(df)
        model = (BradleyTerry() if method == "bt" else NoisyBradleyTerry()).fit(df)
        out = model.scores_.rename("score").reset_index().sort_values("score", ascending=False)
        return method, out, len(out), extra
    if kind == "ranking":
        if method == "auto":
            method = "plackett_luce"
            extra["reason"] = "plackett_luce: the probabilistic model of rankings (the others are voting rules)"
        cls = {"plackett_luce": PlackettLuce, "ranked_pairs": RankedPairs, "borda": Borda}[method]
        model = cls().fit(df)
        out = model.labels_.rename("ranking").reset_index()
        return method, out, len(out), extra
    score = pd.to_numeric(df["score"], errors="coerce")
    if method == "auto":
        levels = score.dropna().unique()
        ordinal = len(levels) <= 11 and bool(np.all(np.mod(levels, 1) == 0))
        method = "ordinal" if ordinal else "calibrated"
        extra["reason"] = (f"{len(levels)} distinct integer levels: ordinal consensus" if ordinal else
                           "continuous scores: per-rater bias and scale correction")
    if method == "ordinal":
        oc = OrdinalConsensus().fit(df)
        out = pd.DataFrame({"task": oc.labels_.index, "score": oc.labels_.to_numpy(),
                            "confidence": oc.probas_.max(axis=1).to_numpy()})
    else:
        rc = RaterCalibration().fit(df)
        out = pd.DataFrame({"task": rc.scores_.index, "score": rc.scores_.to_numpy()})
    return method, out, len(out), extra


def _accuracy(kind: str, method: str, out: pd.DataFrame, gold_path: str | Path) -> tuple[float, str, int]:
    from scipy.stats import spearmanr

    if kind == "pairwise":
        gold = read_table(gold_path, ("item", "score"))
        truth = pd.to_numeric(gold.set_index("item")["score"], errors="coerce")
        ours = out.set_index("item")["score"].reindex(truth.index)
        ok = ours.notna() & truth.notna()
        return float(spearmanr(ours[ok], truth[ok])[0]), "spearman", int(ok.sum())
    key = {"categorical": "label", "ranking": "ranking", "rating": "score"}[kind]
    gold = read_table(gold_path, ("task", key))
    truth = gold.set_index(gold["task"].astype(str))[key]
    ours = out.set_index(out["task"].astype(str))[key]
    common = truth.index.intersection(ours.index)
    if len(common) == 0:
        raise InputFileError(f"{gold_path}: no gold task occurs in the input; check the task ids", path=str(gold_path))
    if kind == "rating":
        t = pd.to_numeric(truth.reindex(common), errors="coerce")
        o = pd.to_numeric(ours.reindex(common), errors="coerce")
        if method == "calibrated":
            return float(spearmanr(o, t)[0]), "spearman", len(common)
        return float((o == t).mean()), "exact", len(common)
    if kind == "ranking":
        norm = truth.reindex(common).astype(str).str.replace(" ", "")
        return float((ours.reindex(common).astype(str) == norm).mean()), "exact", len(common)
    return float((ours.reindex(common).astype(str) == truth.reindex(common).astype(str)).mean()), "exact", len(common)


def reconcile_file(input_path: str | Path, *, kind: str, method: str = "auto", gold: str | Path | None = None,
                   out: str | Path | None = None) -> dict[str, Any]:
    """Read, reconcile, write the consensus as CSV; return the summary the CLI prints."""
    _check_method(kind, method)
    df = read_table(input_path, COLUMNS[kind])
    started = time.perf_counter()
    used, table, n_tasks, extra = _fit(kind, method, df)
    seconds = time.perf_counter() - started
    src = Path(input_path)
    dest = Path(out) if out is not None else src.with_name(f"{src.name.split('.')[0]}.{kind}.consensus.csv")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(dest, index=False)
    except OSError as exc:
        raise InputFileError(f"{dest}: cannot write the labels ({exc}); pass --out to a writable path",
                             path=str(dest)) from exc
    summary: dict[str, Any] = {
        "method": used, "requested": method, "kind": kind, "n_tasks": n_tasks,
        "n_workers": int(df["worker"].nunique()), "n_labels": len(df), "seconds": round(seconds, 4),
        "out": str(dest), **extra,
    }
    if gold is not None:
        acc, metric, n_gold = _accuracy(kind, used, table, gold)
        summary.update({"accuracy": acc, "accuracy_metric": metric, "n_gold": n_gold})
    return summary


def _num(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else x


def agreement_file(input_path: str | Path, *, level: str = "nominal", by: str | None = None,
                   n_boot: int = 200) -> dict[str, Any]:
    """α with its bootstrap CI, Fleiss' κ, percent agreement, Cohen's κ per rater pair, per-rater flags and,
    with ``by`` (worker | vendor | batch), α per group (per worker: mean Cohen's κ with the others)."""
    if by not in (None, "worker", "vendor", "batch"):
        raise InputFileError(f"--by must be worker, vendor or batch; got {by!r}")
    df = read_table(input_path, ("worker", "task", "label") + ((by,) if by in ("vendor", "batch") else ()))
    labels = df[["task", "worker", "label"]]
    started = time.perf_counter()
    alpha, low, high = krippendorff_alpha_ci(labels, level, n_boot=n_boot)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "level": level, "alpha": alpha, "alpha_ci": [low, high], "n_tasks": int(df["task"].nunique()),
        "n_workers": int(df["worker"].nunique()), "n_labels": len(df),
    }
    try:
        result["fleiss_kappa"] = _num(fleiss_kappa(labels))
    except AggregationInputError:
        result["fleiss_kappa"] = None
    result["percent_agreement"] = percent_agreement(labels)
    pairs = cohen_kappa_pairs(labels)
    result["cohen_kappa_pairs"] = [{k: _num(v) for k, v in r.items()} for r in pairs.to_dict(orient="records")]
    cols = ["task", "worker", "label"] + (["seconds"] if "seconds" in df.columns else [])
    flags = rater_flags(df[cols])
    if by == "worker":
        long = pd.concat([pairs.rename(columns={"worker_a": "w"}), pairs.rename(columns={"worker_b": "w"})])
        flags["mean_cohen_kappa"] = long.groupby("w")["kappa"].mean().reindex(flags.index)
    result["raters"] = [{"worker": w, **{k: _num(v.item() if hasattr(v, "item") else v) for k, v in r.items()}}
                        for w, r in flags.iterrows()]
    if by in ("vendor", "batch"):
        groups = []
        for key, part in df.groupby(by):
            try:
                a = krippendorff_alpha(part[["task", "worker", "label"]], level)  # type: ignore[arg-type]
            except AggregationInputError as exc:
                a, why = None, str(exc)
            else:
                why = ""
            groups.append({by: str(key), "alpha": a, "n_labels": len(part), **({"note": why} if why else {})})
        result["by"] = groups
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result
