"""The provenance card of a model version: the human labor behind it, in numbers.

Built from the lineage tables (snapshot_judgment -> judgment), never from the training data
file alone, and written beside the weights as ``card.md``, ``card.html`` and ``card.json``.
"""

from __future__ import annotations

import html
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from service.aggregation import krippendorff_alpha_ci
from service.domain.campaigns import PRIMARY_CONSENSUS
from service.errors import NotFound
from service.storage.models import (
    ConsensusLabel,
    DatasetSnapshot,
    Item,
    Judgment,
    ModelVersion,
    SnapshotJudgment,
)

__all__ = ["build_card", "render_html", "render_markdown", "write_card"]


def _alpha(frame: pd.DataFrame) -> dict[str, float | None]:
    if frame["worker"].nunique() < 2:
        return {"value": None, "ci_low": None, "ci_high": None}
    try:
        value, low, high = krippendorff_alpha_ci(frame, level="nominal", n_boot=300)
    except ValueError:
        return {"value": None, "ci_low": None, "ci_high": None}
    return {"value": float(value), "ci_low": float(low), "ci_high": float(high)}


def build_card(session: Session, model_id: uuid.UUID | str) -> dict[str, Any]:
    model = session.get(ModelVersion, uuid.UUID(str(model_id)))
    if model is None:
        raise NotFound("model version", model_id)
    snapshot = session.get(DatasetSnapshot, model.snapshot_id)
    assert snapshot is not None
    judgments = session.exec(select(Judgment).join(SnapshotJudgment, col(SnapshotJudgment.judgment_id) == Judgment.id)
                             .where(SnapshotJudgment.snapshot_id == snapshot.id)).all()
    item_ids = {j.item_id for j in judgments}
    # filtered in Python, not with IN (...): a large snapshot would pass PostgreSQL's parameter limit
    labels = [c for c in session.exec(select(ConsensusLabel).where(ConsensusLabel.campaign_id == model.campaign_id))
              if c.item_id in item_ids]
    primary = [c for c in labels if c.method == PRIMARY_CONSENSUS] or labels
    gold = {i: g for i, g in session.exec(select(Item.id, Item.gold).where(Item.campaign_id == model.campaign_id)
                                          .where(col(Item.gold).is_not(None))) if i in item_ids}
    vendors = Counter(j.vendor for j in judgments)
    seconds = [(j.submitted_at - j.started_at).total_seconds() for j in judgments if j.started_at is not None]
    frame = pd.DataFrame({"task": [str(j.item_id) for j in judgments], "worker": [j.rater_id for j in judgments],
                          "label": [j.label for j in judgments]})
    consensus_on_gold = [c.label == gold[c.item_id] for c in primary if c.item_id in gold]
    costs = [j.cost for j in judgments if j.cost is not None]
    return {
        "model": {"family": model.family, "version": model.version, "id": str(model.id),
                  "created_at": model.created_at.isoformat(), "dataset_hash": model.dataset_hash,
                  "parent_id": str(model.parent_id) if model.parent_id else None, "promoted": model.promoted,
                  "artifact_path": model.artifact_path},
        "metrics": model.metrics,
        "data": {"pairs": snapshot.n_pairs, "items": len(item_ids), "judgments": len(judgments),
                 "raters": len({j.rater_id for j in judgments}),
                 "vendors": {v: {"judgments": n, "share": n / max(len(judgments), 1)} for v, n in vendors.items()},
                 "rater_hours": sum(seconds) / 3600.0, "rater_hours_known_for": len(seconds),
                 "cost_usd": float(sum(costs)), "cost_known_for": len(costs)},
        "agreement": {"krippendorff_alpha_nominal": _alpha(frame)},
        "consensus": {"method": primary[0].method if primary else None,
                      "contested_share": (sum(c.contested for c in primary) / len(primary)) if primary else None,
                      "gold_items": len(consensus_on_gold),
                      "gold_accuracy": (sum(consensus_on_gold) / len(consensus_on_gold)) if consensus_on_gold else None},
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    data, alpha, cons, m = card["data"], card["agreement"]["krippendorff_alpha_nominal"], card["consensus"], card["metrics"]
    vendors = ", ".join(f"{v} {d['share']:.0%} ({d['judgments']})" for v, d in sorted(data["vendors"].items()))
    return [
        ("Model", f"{card['model']['family']} v{card['model']['version']}"
                  f"{' (promoted)' if card['model']['promoted'] else ''}"),
        ("Dataset hash", card["model"]["dataset_hash"][:16]),
        ("Preference pairs / items", f"{data['pairs']} / {data['items']}"),
        ("Human judgments", str(data["judgments"])),
        ("Distinct raters", str(data["raters"])),
        ("Vendors (share of judgments)", vendors or "n/a"),
        ("Rater-hours", f"{data['rater_hours']:.2f} h (from {data['rater_hours_known_for']} timed judgments)"),
        ("Cost", f"{data['cost_usd']:.2f} USD (from {data['cost_known_for']} judgments)"),
        ("Krippendorff's α (nominal, 95% CI)",
         f"{_fmt(alpha['value'])} [{_fmt(alpha['ci_low'])}, {_fmt(alpha['ci_high'])}]"),
        ("Consensus method", _fmt(cons["method"])),
        ("Contested items", "n/a" if cons["contested_share"] is None else f"{cons['contested_share']:.1%}"),
        ("Consensus accuracy on gold items", f"{_fmt(cons['gold_accuracy'])} ({cons['gold_items']} gold items)"),
        ("Held-out pairwise accuracy", _fmt(m.get("heldout_accuracy"))),
        ("Calibration error (ECE)", _fmt(m.get("calibration_error"))),
        ("Previous version on the same held-out set", _fmt(m.get("parent_heldout_accuracy"))),
        ("Reward-model accuracy on gold items", _fmt(m.get("gold_accuracy"))),
    ]


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# Provenance card: {card['model']['family']} v{card['model']['version']}", "",
             "The human labor behind this reward model, from crowdbridge's lineage tables.", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _rows(card)]
    return "\n".join(lines) + "\n"


def render_html(card: dict[str, Any]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _rows(card))
    title = html.escape(f"{card['model']['family']} v{card['model']['version']}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Provenance card: {title}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
            "th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left}th{background:#f4f4f4}</style>"
            f"</head><body><h1>Provenance card: {title}</h1>"
            "<p>The human labor behind this reward model, from crowdbridge's lineage tables.</p>"
            f"<table>{body}</table></body></html>")


def write_card(session: Session, model_id: uuid.UUID | str) -> dict[str, Any]:
    """Build the card and write it beside the weights; returns the card."""
    card = build_card(session, model_id)
    directory = Path(card["model"]["artifact_path"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "card.md").write_text(render_markdown(card), encoding="utf-8")
    (directory / "card.html").write_text(render_html(card), encoding="utf-8")
    (directory / "card.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    return card
