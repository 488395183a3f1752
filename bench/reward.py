"""Reward-model benchmark: ours vs TRL's ``RewardTrainer`` on the hh-rlhf harmless slice, side by side.

    python -m bench.reward [--quick] [--json] [--skip-trl] [--precision fp32|bf16|both]

Same backbone (all-MiniLM-L6-v2, offline), batch 8, max length 256, 2 torch threads, same learning rate,
no warm-up, linear decay, weight decay 0, grad-norm 1, dropout off, seed 0. Both sides train on the *same
token ids* (our truncation: TRL would drop the 20% of pairs over 256 tokens instead) so pairs/s compare
like for like. Each side runs in its own process (peak RSS is per side); the TRL side runs from the venv
in ``$BENCH_TRL_PYTHON`` (default /work/.venvs/bench-trl), because TRL is not a dependency of the service.

Speed is also measured in interleaved rounds (``--rounds``, ``--round-steps``): short runs of ours and TRL back
to back, repeated, the speed-up being the median of the per-round ratios, so that both sides see the same
machine load. Rows: full fine-tune fp32 (ours vs TRL fp32, no grad checkpointing), full fine-tune bf16 (ours bf16
autocast vs TRL's own defaults: bf16 + gradient checkpointing), frozen encoder (head pairs/s on cached
embeddings, and cold end-to-end including embedding), the demo-size frozen call, and a noisy-rater table:
held-out accuracy of frozen heads trained on 5 simulated raters per pair, aggregated by Dawid–Skene soft
labels vs majority vote vs one rater vs the dataset's own label.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "preferences" / "hh-rlhf-harmless"
TRL_PYTHON = os.environ.get("BENCH_TRL_PYTHON", "/work/.venvs/bench-trl/bin/python")
COMMON = dict(batch_size=8, max_length=256, learning_rate=1e-4, seed=0, threads=2)


def _load(n_train: int | None, n_test: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    from service.reward import read_pairs

    return (read_pairs(DATA / "hh_harmless_train.jsonl", n_train),
            read_pairs(DATA / "hh_harmless_test.jsonl", n_test))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------- sides
def side_ours(a: dict[str, Any]) -> dict[str, Any]:
    from service.reward import RewardConfig, train_reward_model

    train, test = _load(a["n_train"], a["n_test"])
    cfg = RewardConfig(mode=a["mode"], backbone="minilm", max_length=COMMON["max_length"],
                       batch_size=COMMON["batch_size"], seed=COMMON["seed"], num_threads=COMMON["threads"],
                       learning_rate=COMMON["learning_rate"] if a["mode"] == "full" else None,
                       weight_decay=0.0, epochs=1 if a["mode"] == "full" else None, max_steps=a.get("steps"),
                       mixed_precision={"bf16": "bf16", "fp32": "no"}.get(a["precision"], "auto"),
                       cache_dir=a.get("cache_dir"))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        res = train_reward_model(cfg, train, test, Path(out))
        wall = time.perf_counter() - t0
    m = res.metrics
    return {"pairs_per_second": m["pairs_per_second"], "accuracy": m["heldout_accuracy"],
            "ece": m["calibration_error"], "steps": m["steps"], "call_seconds": wall,
            "embed_seconds": m.get("embed_seconds"), "e2e_pairs_per_second": m.get("end_to_end_pairs_per_second"),
            "padding_share": m.get("padding_share"), "peak_rss_mb": _rss_mb()}


def side_trl(a: dict[str, Any]) -> dict[str, Any]:
    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from service.reward.metrics import pairwise_metrics
    from service.reward.modeling import encode_texts, minilm_path, pad_batch
    from service.reward.runtime import sorted_batches

    torch.set_num_threads(COMMON["threads"])
    torch.manual_seed(COMMON["seed"])
    train, test = _load(a["n_train"], a["n_test"])
    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    enc = lambda df, col: encode_texts(tok, list(df["prompt"]), list(df[col]),  # noqa: E731
                                       COMMON["max_length"], decoder=False).ids
    ds = Dataset.from_dict({"chosen_ids": enc(train, "chosen"), "rejected_ids": enc(train, "rejected")})
    bf16 = a["precision"] == "bf16"
    with tempfile.TemporaryDirectory() as out:
        args = trl.RewardConfig(
            output_dir=out, per_device_train_batch_size=COMMON["batch_size"], num_train_epochs=1,
            max_steps=a.get("steps") or -1, learning_rate=COMMON["learning_rate"], weight_decay=0.0,
            lr_scheduler_type="linear", warmup_steps=0, max_grad_norm=1.0, seed=COMMON["seed"],
            bf16=bf16, gradient_checkpointing=bf16, use_cpu=True, report_to=[], save_strategy="no",
            logging_steps=50, max_length=None, disable_dropout=True, dataloader_num_workers=0)
        trainer = trl.RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
        t0 = time.perf_counter()
        out_metrics = trainer.train().metrics
        train_s = time.perf_counter() - t0
    steps = trainer.state.global_step
    pairs = min(steps * COMMON["batch_size"], len(ds))
    model.eval()
    ids = enc(test, "chosen") + enc(test, "rejected")
    lengths = np.array([len(x) for x in ids])
    r = np.empty(len(ids))
    with torch.inference_mode():
        for idx in sorted_batches(lengths, 64):
            x, m = pad_batch([ids[i] for i in idx], tok.pad_token_id)
            r[idx] = model(input_ids=x, attention_mask=m).logits.squeeze(-1).float().numpy()
    n = len(test)
    pm = pairwise_metrics(r[:n], r[n:])
    return {"pairs_per_second": pairs / train_s, "trainer_runtime": out_metrics.get("train_runtime"),
            "accuracy": pm["heldout_accuracy"], "ece": pm["calibration_error"], "steps": steps,
            "peak_rss_mb": _rss_mb(), "trl": trl.__version__}


def _simulate_raters(n: int, seed: int, k: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """``k`` raters per pair from a pool of 40: 40% careful (acc .85), 30% hasty (.65), 30% spammers (.5).

    Truth is the dataset's label (chosen better). Each pair is shown with a random side order (``swap``), as
    a vendor would, so the aggregators see balanced classes. Rows: task, worker, label (1: the side shown
    first is better).
    """
    rng = np.random.default_rng(seed)
    pool = 40
    acc = np.concatenate([np.full(16, 0.85), np.full(12, 0.65), np.full(12, 0.5)])
    workers = np.argsort(rng.random((n, pool)), axis=1)[:, :k]
    swap = rng.random(n) < 0.5
    right = rng.random((n, k)) < acc[workers]
    first_better = np.where(right, ~swap[:, None], swap[:, None])
    long = pd.DataFrame({"task": np.repeat(np.arange(n), k), "worker": workers.ravel(),
                         "label": first_better.ravel().astype(int)})
    return long, swap


def _one_coin_posterior(long: pd.DataFrame, n: int, iters: int = 50) -> np.ndarray:
    """Fallback soft labels: one-coin Dawid–Skene EM, P(label 1) per task."""
    t, w, y = long["task"].to_numpy(), long["worker"].to_numpy(), long["label"].to_numpy()
    q = np.bincount(t, y, n) / np.bincount(t, minlength=n)
    for _ in range(iters):
        agree = np.where(y == 1, q[t], 1 - q[t])
        skill = np.clip(np.bincount(w, agree) / np.maximum(np.bincount(w), 1), 0.01, 0.99)
        ll1 = np.bincount(t, np.where(y == 1, np.log(skill[w]), np.log(1 - skill[w])), n)
        ll0 = np.bincount(t, np.where(y == 0, np.log(skill[w]), np.log(1 - skill[w])), n)
        prior = q.mean()
        q = 1 / (1 + np.exp(ll0 + np.log(1 - prior) - ll1 - np.log(prior)))
    return q


def side_noisy(a: dict[str, Any]) -> dict[str, Any]:
    from service.reward import RewardConfig, train_reward_model

    train, test = _load(a["n_train"], a["n_test"])
    n = len(train)
    try:
        from service.aggregation import DawidSkene

        def soft(long: pd.DataFrame) -> np.ndarray:
            proba = DawidSkene().fit_predict_proba(long)
            return proba.reindex(range(n))[1].fillna(0.5).to_numpy()
        soft_name = "service.aggregation.DawidSkene"
    except ImportError:
        def soft(long: pd.DataFrame) -> np.ndarray:
            return _one_coin_posterior(long, n)
        soft_name = "one-coin EM (bench fallback)"
    rows: dict[str, list[tuple[float, float]]] = {}
    for seed in range(a["seeds"]):
        long, swap = _simulate_raters(n, seed)
        unswap = lambda p_first: np.where(swap, 1.0 - p_first, p_first)  # noqa: E731  P(chosen better)
        first = unswap(long.groupby("task")["label"].first().to_numpy().astype(float))
        mv = unswap((long.groupby("task")["label"].mean().to_numpy() > 0.5).astype(float))
        ds = unswap(soft(long))
        labels = {"gold (dataset label)": np.ones(n), "Dawid-Skene soft": ds,
                  "Dawid-Skene hard": (ds > 0.5).astype(float), "majority vote (hard)": mv,
                  "one rater (hard)": first}
        for name, w in labels.items():
            cfg = RewardConfig(mode="frozen", backbone="minilm", max_length=COMMON["max_length"],
                               batch_size=COMMON["batch_size"], seed=seed, num_threads=COMMON["threads"],
                               cache_dir=a["cache_dir"])
            with tempfile.TemporaryDirectory() as out:
                res = train_reward_model(cfg, train.assign(weight=w), test, Path(out))
            label_acc = float(np.mean(np.where(w > 0.5, 1.0, np.where(w < 0.5, 0.0, 0.5))))
            rows.setdefault(name, []).append((res.metrics["heldout_accuracy"], label_acc))
    table = {k: {"heldout_accuracy_mean": float(np.mean([x[0] for x in v])),
                 "heldout_accuracy_std": float(np.std([x[0] for x in v])),
                 "label_accuracy": float(np.mean([x[1] for x in v]))} for k, v in rows.items()}
    return {"table": table, "soft_labels_from": soft_name, "n_train": n, "n_test": len(test),
            "seeds": a["seeds"], "peak_rss_mb": _rss_mb()}


SIDES = {"ours": side_ours, "trl": side_trl, "noisy": side_noisy}


# ------------------------------------------------------------------------------------------ driver
def _run_side(python: str, side: str, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [python, "-m", "bench.reward", "--side", side, "--side-args", json.dumps(args)]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout)[-1500:], "side": side}
    out = json.loads(lines[-1][7:])
    out["process_seconds"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="25 steps per full-mode side, 100 test pairs, bf16 only, 450-pair frozen/noisy rows")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--precision", choices=["fp32", "bf16", "both"], default=None,
                   help="full fine-tune precision rows (default: bf16 with --quick, else both)")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved throughput rounds per precision, ours then TRL, each --round-steps long; "
                        "the speed-up is the median of the per-round ratios (default 3, 1 with --quick)")
    p.add_argument("--round-steps", type=int, default=30)
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--side-args", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.side:
        print("RESULT " + json.dumps(SIDES[ns.side](json.loads(ns.side_args))), flush=True)
        return
    steps, n_test = (25, 100) if ns.quick else (None, 500)
    precision = ns.precision or ("bf16" if ns.quick else "both")
    precisions = ["fp32", "bf16"] if precision == "both" else [precision]
    have_trl = not ns.skip_trl and Path(TRL_PYTHON).exists()
    res: dict[str, Any] = {"config": {**COMMON, "steps": steps or "1 epoch (1812 pairs)", "n_test": n_test,
                                      "load_before": os.getloadavg()[0]}}
    with tempfile.TemporaryDirectory() as cache:
        for prec in precisions:  # ours and TRL back to back, per precision, to share the machine's load
            base = {"mode": "full", "n_train": None, "n_test": n_test, "steps": steps, "precision": prec}
            res[f"full_{prec}_ours"] = _run_side(sys.executable, "ours", base)
            if have_trl:
                res[f"full_{prec}_trl"] = _run_side(TRL_PYTHON, "trl", base)
                rounds = ns.rounds if ns.rounds is not None else (1 if ns.quick else 3)
                res[f"rounds_{prec}"] = _throughput_rounds(base, rounds, ns.round_steps)
        demo = {"mode": "frozen", "n_train": 450, "n_test": 100, "precision": "auto",
                "cache_dir": str(Path(cache) / "demo")}
        res["demo_frozen_cold"] = _run_side(sys.executable, "ours", demo)
        res["demo_frozen_warm"] = _run_side(sys.executable, "ours", demo)
        shared = str(Path(cache) / "noisy")
        if ns.quick:  # the demo-size run is the frozen row
            res["frozen_ours"] = res["demo_frozen_cold"]
        else:
            res["frozen_ours"] = _run_side(sys.executable, "ours", {
                "mode": "frozen", "n_train": None, "n_test": n_test, "precision": "auto", "cache_dir": shared})
        res["noisy"] = _run_side(sys.executable, "noisy", {
            "n_train": 450 if ns.quick else None, "n_test": n_test, "seeds": 2 if ns.quick else 3,
            "cache_dir": str(Path(cache) / "demo") if ns.quick else shared})
    res["config"]["load_after"] = os.getloadavg()[0]
    _ratios(res, precisions)
    if ns.json:
        print(json.dumps(res, indent=2, default=float))
    else:
        _print_tables(res, precisions)


def _throughput_rounds(base: dict[str, Any], rounds: int, steps: int) -> dict[str, Any]:
    """Short runs of both sides back to back, ``rounds`` times: both see the same machine load, so the
    median per-round ratio is the fair speed figure on a shared machine (one long run per side is not)."""
    args = {**base, "steps": steps, "n_test": 16}
    ours: list[float] = []
    trl: list[float] = []
    for _ in range(rounds):
        o, t = _run_side(sys.executable, "ours", args), _run_side(TRL_PYTHON, "trl", args)
        if "pairs_per_second" in o and "pairs_per_second" in t:
            ours.append(o["pairs_per_second"])
            trl.append(t["pairs_per_second"])
    if not ours:
        return {"error": "no round finished on both sides"}
    ratios = [a / b for a, b in zip(ours, trl)]
    return {"steps": steps, "ours_pairs_per_second": ours, "trl_pairs_per_second": trl,
            "ratios": ratios, "median_ratio": float(np.median(ratios)), "load": os.getloadavg()[0]}


def _ratios(res: dict[str, Any], precisions: list[str]) -> None:
    r: dict[str, float] = {}
    for prec in precisions:
        if "median_ratio" in res.get(f"rounds_{prec}", {}):
            r[f"full_{prec}_speedup_interleaved_median"] = res[f"rounds_{prec}"]["median_ratio"]
        ours, trl = res.get(f"full_{prec}_ours", {}), res.get(f"full_{prec}_trl", {})
        if "pairs_per_second" in ours and "pairs_per_second" in trl:
            r[f"full_{prec}_speedup"] = ours["pairs_per_second"] / trl["pairs_per_second"]
            r[f"full_{prec}_accuracy_delta"] = ours["accuracy"] - trl["accuracy"]
    trls = [res[k]["pairs_per_second"] for k in res if k.endswith("_trl") and "pairs_per_second" in res[k]]
    fz = res.get("frozen_ours", {})
    if trls and "pairs_per_second" in fz:
        best = max(trls)
        r["frozen_head_speedup_vs_best_trl"] = fz["pairs_per_second"] / best
        r["frozen_cold_e2e_speedup_vs_best_trl"] = fz["e2e_pairs_per_second"] / best
    res["ratios"] = r


def _fmt(xs: list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in xs)


def _print_tables(res: dict[str, Any], precisions: list[str]) -> None:
    c = res["config"]
    print(f"hh-rlhf harmless, MiniLM, batch {c['batch_size']}, len {c['max_length']}, lr {c['learning_rate']}, "
          f"{c['threads']} threads, train {c['steps']}, test {c['n_test']} pairs; "
          f"load avg {c['load_before']:.1f} -> {c['load_after']:.1f}")
    print(f"{'row':28} {'pairs/s':>10} {'accuracy':>9} {'ECE':>6} {'peak RSS MB':>12} {'seconds':>8}")
    for key in [k for k in res if k.startswith("rounds_")]:
        v = res[key]
        if "error" not in v:
            print(f"{key}: {v['steps']} steps each, ours {_fmt(v['ours_pairs_per_second'])} vs TRL "
                  f"{_fmt(v['trl_pairs_per_second'])} pairs/s; ratios {_fmt(v['ratios'])}")
    for key in [k for k in res if k.startswith(("full_", "frozen_", "demo_"))]:
        v = res[key]
        if "error" in v:
            print(f"{key:28} ERROR {v['error'][-300:]}")
            continue
        print(f"{key:28} {v['pairs_per_second']:10.1f} {v['accuracy']:9.3f} {v['ece']:6.3f} "
              f"{v['peak_rss_mb']:12.0f} {v.get('call_seconds') or v.get('process_seconds', 0):8.1f}")
    for k, v in res.get("ratios", {}).items():
        print(f"  {k}: {v:.3f}")
    nz = res.get("noisy", {})
    if "table" in nz:
        print(f"\nnoisy raters: 5 per pair (40% acc .85, 30% .65, 30% spammers), frozen MiniLM head, "
              f"{nz['n_train']} train / {nz['n_test']} test, {nz['seeds']} seeds; soft labels: "
              f"{nz['soft_labels_from']}")
        print(f"{'labels':24} {'label acc':>9} {'held-out acc':>13}")
        for k, v in nz["table"].items():
            print(f"{k:24} {v['label_accuracy']:9.3f} {v['heldout_accuracy_mean']:8.3f} "
                  f"± {v['heldout_accuracy_std']:.3f}")
    elif nz:
        print("noisy: ERROR", nz.get("error", "")[-500:])


if __name__ == "__main__":
    main()
