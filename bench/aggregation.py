"""Aggregation benchmark: ours side by side with crowd-kit 1.4.2, krippendorff and choix.

    python -m bench.aggregation [--quick] [--json] [--slow-anchors]

Every measurement runs in its own subprocess (ours under this interpreter, the anchors under the venv at
``BENCH_ANCHOR_PYTHON``, default /work/.venvs/bench-anchors, which holds crowd-kit and choix), so peak RSS
is per job. Seconds time the fit only, not loading: ours and krippendorff median of 3 (or ``--repeat``), crowd-kit
and choix median of ``--repeat`` (default 1). Accuracy is against gold over
the gold tasks that have answers; for pairwise data it is Spearman's rho against the true scores.

``--quick`` runs the four datasets of the data README's table, DS/MV on the 1M synthetic labels and BT on
200k comparisons, and skips anchors known to take minutes. Without ``--slow-anchors`` crowd-kit GLAD/MACE
run only on sets under 30k labels and the data README's measured anchor numbers stand in for the 1M runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUR_METHODS = ("mv", "wawa", "ds", "ds_map", "onecoin_ds", "glad", "mace", "mace_ck")
# "ds" is maximum-likelihood DS (prior=0, crowd-kit's model: must match it within 0.1 pt); "ds_map" is our
# default MAP DS (Dirichlet prior on the confusion matrices), compared with the same crowd-kit DS. "mace" is
# Hovy et al.'s model (our default); "mace_ck" is MACE(crowdkit_compat=True), which reproduces crowd-kit's labels.
CK_NAMES = {"mv": "MajorityVote", "wawa": "Wawa", "ds": "DawidSkene", "ds_map": "DawidSkene",
            "onecoin_ds": "OneCoinDawidSkene",
            "glad": "GLAD", "mace": "MACE", "mace_ck": "MACE", "bt": "BradleyTerry", "noisy_bt": "NoisyBradleyTerry"}
QUICK_SETS = ("d_Duck_Identification", "d_jn_product", "s4_Dog_data", "s4_Face_Sentiment_Identification")
README_ANCHOR_1M = {"glad": (0.915, 936.0, 1500.0), "mace": (0.923, 294.0, None)}  # acc, s, MB (data README)


# -- jobs (run inside a subprocess) ----------------------------------------------------------------------
def _load(dataset: str, quick: bool) -> tuple[Any, Any]:
    from bench import _common as c

    if dataset == "synthetic_1M":
        return c.synthetic_labels()
    if dataset.startswith("pairs_"):
        n = 200_000 if dataset == "pairs_200k" else 1_000_000
        return c.synthetic_pairs(n_pairs=n)
    return c.load_truth(dataset)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from bench import _common as c

    df, truth = _load(job["dataset"], job.get("quick", False))
    side, method, repeat = job["side"], job["method"], job.get("repeat", 1)
    out: dict[str, Any] = {}
    if method in ("alpha", "alpha_counts"):
        import numpy as np
        import pandas as pd

        def counts() -> np.ndarray:  # the fastest way we know to build krippendorff's value_counts
            t = pd.factorize(df["task"])[0]
            v, uniq = pd.factorize(df["label"], sort=True)
            return np.bincount(t * len(uniq) + v, minlength=(t.max() + 1) * len(uniq)).reshape(-1, len(uniq))

        vc = counts() if method == "alpha_counts" else None  # like for like: both start from the matrix
        if side == "ours":
            from service.aggregation import krippendorff_alpha
            from service.aggregation.krippendorff import krippendorff_alpha_from_counts

            fn = (lambda: krippendorff_alpha(df, "nominal")) if vc is None else (
                lambda: krippendorff_alpha_from_counts(vc, "nominal"))
        else:
            import krippendorff

            fn = (lambda: krippendorff.alpha(value_counts=counts(), level_of_measurement="nominal")) \
                if vc is None else (lambda: krippendorff.alpha(value_counts=vc, level_of_measurement="nominal"))
        val, secs = c.timed(lambda: float(fn()), repeat)
        out = {"value": float(val), "seconds": secs}
    elif method in ("bt", "noisy_bt", "choix_ilsr"):
        from scipy.stats import spearmanr

        if side == "ours":
            from service.aggregation import BradleyTerry, NoisyBradleyTerry

            model = BradleyTerry() if method == "bt" else NoisyBradleyTerry()
            scores, secs = c.timed(lambda: model.fit(df).scores_, repeat)
        elif method == "choix_ilsr":
            import choix
            import numpy as np
            import pandas as pd

            items = pd.Index(sorted(set(df["left"]) | set(df["right"])))
            li, ri = items.get_indexer(df["left"]), items.get_indexer(df["right"])
            lw = (df["winner"] == "left").to_numpy()
            data = np.column_stack([np.where(lw, li, ri), np.where(lw, ri, li)])
            params, secs = c.timed(lambda: choix.ilsr_pairwise(len(items), data, alpha=1e-4), repeat)
            scores = pd.Series(params, index=items)
        else:
            import crowdkit.aggregation as ck

            ckdf = df.assign(label=df["left"].where(df["winner"] == "left", df["right"]))[
                ["worker", "left", "right", "label"]]
            model = getattr(ck, CK_NAMES[method])(n_iter=100) if method == "bt" else getattr(ck, CK_NAMES[method])()
            scores, secs = c.timed(lambda: model.fit(ckdf).scores_, repeat)
        rho = spearmanr(scores.reindex(truth.index).to_numpy(), truth.to_numpy(), nan_policy="omit")[0]
        out = {"accuracy": float(rho), "seconds": secs}
    elif method == "ds_incremental":
        import numpy as np

        from service.aggregation import DawidSkene

        # 90% fitted, then ten updates of 1% each (a batch of 10k labels): the seconds are the median update
        # (the first one also builds the posterior table, O(tasks) once; it is reported apart)
        cut, step = int(len(df) * 0.9), len(df) // 100
        model = DawidSkene().fit(df.iloc[:cut])
        times = []
        for start in range(cut, len(df), step):
            t0 = time.perf_counter()
            model.partial_fit(df.iloc[start:start + step])
            times.append(time.perf_counter() - t0)
        full, full_secs = c.timed(lambda: DawidSkene().fit(df), 1)
        agree = float(np.mean(model.labels_.reindex(full.labels_.index) == full.labels_))
        out = {"accuracy": c.accuracy(model.labels_, truth), "seconds": float(np.median(times)),
               "anchor_accuracy": c.accuracy(full.labels_, truth), "anchor_seconds": full_secs,
               "note": f"median of {len(times)} updates of {step} labels (first {times[0]:.3f}s); vs full refit "
                       f"of all {len(df)}; labels agree {agree:.4f}"}
    else:
        if side == "ours":
            from service.aggregation import METHODS

            variants = {"ds": lambda: METHODS["ds"](prior=0.0), "ds_map": METHODS["ds"],
                        "mace_ck": lambda: METHODS["mace"](crowdkit_compat=True)}
            model = variants.get(method, METHODS.get(method))()
            labels, secs = c.timed(lambda: model.fit(df).labels_, repeat)
        else:
            import warnings

            import crowdkit.aggregation as ck
            import crowdkit.aggregation.classification.wawa as ck_wawa

            warnings.filterwarnings("ignore")
            # crowd-kit 1.4.2's Wawa.predict calls sklearn's check_is_fitted, which sklearn >= 1.6 rejects for
            # non-sklearn estimators (AttributeError __sklearn_tags__); on a fitted model it is a no-op
            ck_wawa.check_is_fitted = lambda *args, **kwargs: None
            model = getattr(ck, CK_NAMES[method])()
            labels, secs = c.timed(lambda: model.fit_predict(df), repeat)
        out = {"accuracy": c.accuracy(labels, truth), "seconds": secs}
    out["peak_mb"] = c.peak_rss_mb()
    return out


def _spawn(python: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run([python, "-m", "bench.aggregation", "--job", json.dumps(job)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f}s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc={proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- plan and report -------------------------------------------------------------------------------------
def plan(quick: bool, slow_anchors: bool) -> list[tuple[str, str, bool]]:
    """(dataset, method, run_anchor) rows."""
    from bench import _common as c

    sizes = __import__("pandas").read_csv(c.TRUTH / "summary.csv").set_index("name")["labels"]
    rows: list[tuple[str, str, bool]] = []
    sets = QUICK_SETS if quick else tuple(c.categorical_datasets())
    for ds in sets:
        for m in OUR_METHODS:
            slow = m in ("glad", "mace", "mace_ck") and sizes[ds] > 30_000
            if quick and m in ("glad", "mace", "mace_ck") and ds == "d_jn_product":
                slow = True
            rows.append((ds, m, slow_anchors or not slow))
        rows.append((ds, "alpha", True))
        rows.append((ds, "alpha_counts", True))
    rows += [("synthetic_1M", m, True) for m in (("mv", "ds") if quick else ("mv", "wawa", "ds", "ds_map",
                                                                         "onecoin_ds"))]
    if not quick:
        rows += [("synthetic_1M", m, slow_anchors) for m in ("glad", "mace")]
    rows += [("synthetic_1M", "alpha", True), ("synthetic_1M", "alpha_counts", True),
             ("synthetic_1M", "ds_incremental", False)]
    pairs = "pairs_200k" if quick else "pairs_1M"
    rows += [(pairs, "bt", True), (pairs, "noisy_bt", not quick)]
    if not quick:  # choix ILSR took > 2.5 min on 200k comparisons over 10k items
        rows.append((pairs, "choix_ilsr", slow_anchors))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    ap.add_argument("--slow-anchors", action="store_true", help="also run anchors that take minutes")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--out", help="also write the JSON rows to this file")
    ap.add_argument("--job", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.job:
        print(json.dumps(run_job(json.loads(args.job))))
        return 0
    from bench import _common as c

    anchor_py = c.anchor_python()
    results = []
    for ds, method, run_anchor in plan(args.quick, args.slow_anchors):
        job = {"dataset": ds, "method": method, "repeat": args.repeat, "quick": args.quick}
        mine = {**job, "side": "ours", "repeat": max(3, args.repeat)}
        ours = _spawn(sys.executable, mine if method != "choix_ilsr" else {**mine, "method": "bt"}, args.timeout)
        if method == "ds_incremental":
            anchor = {"accuracy": ours.get("anchor_accuracy"), "seconds": ours.get("anchor_seconds"),
                      "source": "our full refit"}
        elif method in ("alpha", "alpha_counts"):
            anchor = _spawn(anchor_py or sys.executable, {**job, "side": "anchor", "repeat": max(3, args.repeat)}, args.timeout)
            anchor["source"] = ("krippendorff 0.9, value_counts built with bincount (timed)" if method == "alpha"
                                else "krippendorff 0.9, same value_counts matrix (both untimed prep)")
        elif run_anchor and anchor_py:
            src = "choix" if method == "choix_ilsr" else "crowd-kit 1.4.2"
            anchor = _spawn(anchor_py, {**job, "side": "anchor"}, args.timeout) | {"source": src}
        elif ds == "synthetic_1M" and method in README_ANCHOR_1M:
            a, s, mb = README_ANCHOR_1M[method]
            anchor = {"accuracy": a, "seconds": s, "peak_mb": mb, "source": "data README (not run)"}
        else:
            anchor = {"source": "skipped (slow)" if anchor_py else "no anchor venv"}
        row = {"dataset": ds, "method": method, "ours": ours, "anchor": anchor}
        if ours.get("seconds") and anchor.get("seconds"):
            row["speedup"] = anchor["seconds"] / max(ours["seconds"], 1e-9)
        results.append(row)
        if not args.json:
            print(_fmt(row), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


def _fmt(row: dict[str, Any]) -> str:
    o, a = row["ours"], row["anchor"]

    def num(d: dict[str, Any], k: str, f: str) -> str:
        v = d.get(k)
        return format(v, f) if isinstance(v, (int, float)) else "-"

    key = "value" if row["method"].startswith("alpha") else "accuracy"
    sp = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
    err = o.get("error") or a.get("error") or ""
    return (f"{row['dataset'][:30]:30} {row['method']:14} ours {num(o, key, '.4f'):>7} anchor {num(a, key, '.4f'):>7}"
            f"  {num(o, 'seconds', '.3f'):>8}s {num(a, 'seconds', '.3f'):>8}s {sp:>7}"
            f"  {num(o, 'peak_mb', '.0f'):>5}MB {num(a, 'peak_mb', '.0f'):>5}MB  {a.get('source', '')} {err}")


if __name__ == "__main__":
    raise SystemExit(main())
