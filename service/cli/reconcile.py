"""``crowdbridge reconcile`` and ``crowdbridge agreement``: truth inference and agreement audits on files.

Both parse options, call one function of ``service.reconcile_io`` and print the result (a table, or one
JSON object with ``--json``). Bad input raises ``InputFileError`` / ``AggregationInputError`` (both
``ValueError``), which ``service.cli.main`` prints as ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.console import Console
from rich.table import Table

__all__ = ["agreement", "reconcile"]

out = Console()
err = Console(stderr=True)


def _fail(exc: ValueError) -> typer.Exit:
    """Bad input: the error's class and its message (which says what to fix), exit code 2, no traceback."""
    err.print(f"[red]error[/] ({type(exc).__name__}): {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(2)


class Kind(str, Enum):
    categorical = "categorical"
    pairwise = "pairwise"
    ranking = "ranking"
    rating = "rating"


class Level(str, Enum):
    nominal = "nominal"
    ordinal = "ordinal"
    interval = "interval"
    ratio = "ratio"


class By(str, Enum):
    worker = "worker"
    vendor = "vendor"
    batch = "batch"


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def reconcile(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV, TSV, JSONL or Parquet judgments")],
    kind: Annotated[Kind, typer.Option(help="categorical: worker,task,label; pairwise: worker,left,right,winner; "
                                             "ranking: worker,task,ranking ('C>A>B'); rating: worker,task,score")],
    method: Annotated[str, typer.Option(help="a method of the kind, or auto (see service.reconcile_io)")] = "auto",
    gold: Annotated[Path | None, typer.Option(help="known answers: task,label (pairwise: item,score)")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="where to write the consensus CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Reconcile judgments from a file into one consensus per task (or scores per item)."""
    from service.reconcile_io import reconcile_file

    try:
        summary = reconcile_file(input_path, kind=kind.value, method=method, gold=gold, out=out_path)
    except ValueError as exc:  # InputFileError, AggregationInputError
        raise _fail(exc) from None
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"crowdbridge reconcile ({summary['kind']})", show_header=False)
    for key in ("method", "reason", "n_tasks", "n_workers", "n_labels", "seconds", "accuracy", "out"):
        if key in summary:
            table.add_row(key, _f(summary[key]))
    out.print(table)


def agreement(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="worker,task,label (+ vendor, batch, seconds)")],
    level: Annotated[Level, typer.Option(help="Krippendorff's level of measurement")] = Level.nominal,
    by: Annotated[By | None, typer.Option(help="also report per worker, vendor or batch")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Agreement audit: α with its CI, Fleiss' and Cohen's κ, percent agreement, per-rater flags."""
    from service.reconcile_io import agreement_file

    try:
        res = agreement_file(input_path, level=level.value, by=by.value if by else None)
    except ValueError as exc:  # InputFileError, AggregationInputError
        raise _fail(exc) from None
    if as_json:
        _print_json(res)
        return
    head = Table(title="crowdbridge agreement", show_header=False)
    lo, hi = res["alpha_ci"]
    head.add_row(f"Krippendorff's α ({res['level']})", f"{_f(res['alpha'])}  [{_f(lo)}, {_f(hi)}] 95% CI")
    for key in ("fleiss_kappa", "percent_agreement", "n_tasks", "n_workers", "n_labels"):
        head.add_row(key, _f(res[key]))
    kappas = [p["kappa"] for p in res["cohen_kappa_pairs"] if p["kappa"] is not None]
    head.add_row("Cohen's κ, rater pairs", f"{len(kappas)} pairs, median {_f(float(sorted(kappas)[len(kappas) // 2]))}"
                 if kappas else "-")
    out.print(head)
    raters = Table("worker", "n", "accuracy", "κ vs consensus", "flags", title="raters")
    for r in sorted(res["raters"], key=lambda r: (r["flags"] == "", r["accuracy"] or 0))[:50]:
        raters.add_row(str(r["worker"]), str(r["n"]), _f(r["accuracy"]), _f(r["kappa"]), r["flags"] or "")
    out.print(raters)
    if res.get("by"):
        key = next(k for k in res["by"][0] if k not in ("alpha", "n_labels", "note"))
        groups = Table(key, "α", "labels", title=f"by {key}")
        for g in res["by"]:
            groups.add_row(g[key], _f(g["alpha"]), str(g["n_labels"]))
        out.print(groups)
