"""`crowdbridge reconcile` and `crowdbridge agreement` on CSV/JSONL/Parquet files (typer's CliRunner)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def _categorical(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(0)
    recs, gold = [], []
    for t in range(150):
        z = rng.choice("ab")
        gold.append((f"t{t}", z))
        for w in rng.sample(range(10), 5):
            recs.append((f"w{w}", f"t{t}", z if rng.random() < 0.85 else ("b" if z == "a" else "a"),
                         "v1" if w < 5 else "v2", f"b{t // 50}"))
    df = pd.DataFrame(recs, columns=["worker", "task", "label", "vendor", "batch"])
    path, gold_path = tmp_path / "answers.csv", tmp_path / "gold.csv"
    df.to_csv(path, index=False)
    pd.DataFrame(gold, columns=["task", "label"]).to_csv(gold_path, index=False)
    return path, gold_path


def _run(*args: str) -> tuple[int, dict | None, str]:
    res = runner.invoke(app, list(args))
    try:
        return res.exit_code, json.loads(res.stdout), res.output
    except json.JSONDecodeError:
        return res.exit_code, None, res.output


def test_reconcile_categorical_auto_with_gold_json(tmp_path: Path) -> None:
    path, gold = _categorical(tmp_path)
    out = tmp_path / "labels.csv"
    code, obj, _ = _run("reconcile", str(path), "--kind", "categorical", "--method", "auto", "--gold", str(gold),
                        "--out", str(out), "--json")
    assert code == 0 and obj is not None
    assert {"method", "n_tasks", "n_workers", "n_labels", "seconds", "accuracy", "out"} <= set(obj)
    assert obj["n_tasks"] == 150 and obj["n_workers"] == 10 and obj["n_labels"] == 750
    assert obj["accuracy"] > 0.9 and obj["out"] == str(out) and "held-out" in obj["reason"]
    written = pd.read_csv(out)
    assert list(written.columns[:3]) == ["task", "label", "confidence"] and len(written) == 150


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_reconcile_reads_jsonl_and_parquet(tmp_path: Path, fmt: str) -> None:
    path, _ = _categorical(tmp_path)
    df = pd.read_csv(path)
    other = tmp_path / f"answers.{fmt}"
    df.to_json(other, orient="records", lines=True) if fmt == "jsonl" else df.to_parquet(other)
    code, obj, out = _run("reconcile", str(other), "--kind", "categorical", "--method", "mv", "--json")
    assert code == 0, out
    assert obj["method"] == "mv" and obj["n_labels"] == 750


def test_reconcile_pairwise_ranking_rating(tmp_path: Path) -> None:
    pairs = pd.DataFrame({"worker": ["w1", "w2", "w3", "w1", "w2", "w3"], "left": ["a", "a", "b", "b", "c", "a"],
                          "right": ["b", "b", "c", "c", "a", "c"],
                          "winner": ["left", "left", "left", "tie", "right", "a"]})
    pairs.to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"item": ["a", "b", "c"], "score": [3, 2, 1]}).to_csv(tmp_path / "pg.csv", index=False)
    code, obj, out = _run("reconcile", str(tmp_path / "p.csv"), "--kind", "pairwise", "--method", "bt",
                          "--gold", str(tmp_path / "pg.csv"), "--json")
    assert code == 0, out
    assert obj["accuracy_metric"] == "spearman" and obj["accuracy"] == pytest.approx(1.0)
    ranks = pd.DataFrame({"worker": ["w1", "w2", "w3"], "task": ["t"] * 3, "ranking": ["A>B>C", "A>C>B", "B>A>C"]})
    ranks.to_csv(tmp_path / "r.csv", index=False)
    for method in ("plackett_luce", "ranked_pairs", "borda", "auto"):
        code, obj, out = _run("reconcile", str(tmp_path / "r.csv"), "--kind", "ranking", "--method", method, "--json")
        assert code == 0, out
        assert pd.read_csv(obj["out"])["ranking"].tolist() == ["A>B>C"]
    ratings = pd.DataFrame({"worker": ["w1", "w2", "w3"] * 2, "task": ["a"] * 3 + ["b"] * 3,
                            "score": [1, 2, 2, 4, 5, 5]})
    ratings.to_csv(tmp_path / "s.csv", index=False)
    code, obj, out = _run("reconcile", str(tmp_path / "s.csv"), "--kind", "rating", "--json")
    assert code == 0, out
    assert obj["method"] == "ordinal" and pd.read_csv(obj["out"])["score"].tolist() == [2, 5]


def test_agreement_json_by_vendor_and_worker(tmp_path: Path) -> None:
    path, _ = _categorical(tmp_path)
    code, obj, out = _run("agreement", str(path), "--level", "nominal", "--by", "vendor", "--json")
    assert code == 0, out
    assert obj["alpha_ci"][0] <= obj["alpha"] <= obj["alpha_ci"][1]
    assert {g["vendor"] for g in obj["by"]} == {"v1", "v2"}
    assert obj["fleiss_kappa"] is not None and obj["cohen_kappa_pairs"] and len(obj["raters"]) == 10
    code, obj, out = _run("agreement", str(path), "--by", "worker", "--json")
    assert code == 0 and all("mean_cohen_kappa" in r for r in obj["raters"])
    code, _, out = _run("agreement", str(path), "--by", "batch")
    assert code == 0 and "Krippendorff" in out


def _bad(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("case,args,expect", [
    ("unknown columns", ("reconcile", "{f}", "--kind", "categorical"), "InputFileError"),
    ("empty input", ("reconcile", "{e}", "--kind", "categorical"), "no rows"),
    ("one rater", ("reconcile", "{one}", "--kind", "categorical", "--method", "ds"), "at least 2"),
    ("disconnected graph", ("reconcile", "{dis}", "--kind", "pairwise", "--method", "bt"), "parts (items per part: 2, 2)"),
    ("columns of another kind", ("reconcile", "{f}", "--kind", "ranking"), "missing column"),
    ("bad method", ("reconcile", "{one}", "--kind", "categorical", "--method", "nope"), "does not apply"),
    ("missing file", ("reconcile", "{x}", "--kind", "categorical"), "no such file"),
    ("bad format", ("agreement", "{txt}"), "unknown format"),
    ("bad ranking", ("reconcile", "{rk}", "--kind", "ranking"), "twice"),
])
def test_bad_input_exits_2_with_a_named_error(tmp_path: Path, case: str, args: tuple[str, ...], expect: str) -> None:
    files = {
        "f": _bad(tmp_path, "f.csv", "a,b\n1,2\n"),
        "e": _bad(tmp_path, "e.csv", "worker,task,label\n"),
        "one": _bad(tmp_path, "one.csv", "worker,task,label\nw1,t1,a\nw1,t2,b\n"),
        "dis": _bad(tmp_path, "dis.csv", "worker,left,right,winner\nw1,a,b,left\nw2,c,d,left\n"),
        "x": tmp_path / "missing.csv",
        "txt": _bad(tmp_path, "t.txt", "x"),
        "rk": _bad(tmp_path, "rk.csv", "worker,task,ranking\nw1,t,A>A\n"),
    }
    res = runner.invoke(app, [a.format(**{k: str(v) for k, v in files.items()}) for a in args])
    assert res.exit_code == 2, (case, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), case  # no traceback
    text = " ".join(res.output.split())
    assert "error (" in text and expect in text, (case, text)
