"""``crowdbridge retrain``, ``crowdbridge models list|show|promote`` and ``crowdbridge export-pairs``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from service.cli.common import database_url
from service.settings import get_settings

__all__ = ["export_pairs", "models_app", "retrain"]

models_app = typer.Typer(help="The reward-model registry.", no_args_is_help=True)
out = Console()


def _public(model: Any) -> dict[str, Any]:
    return {"id": str(model.id), "family": model.family, "version": model.version, "promoted": model.promoted,
            "dataset_hash": model.dataset_hash, "parent_id": str(model.parent_id) if model.parent_id else None,
            "metrics": model.metrics, "artifact_path": model.artifact_path,
            "created_at": model.created_at.isoformat()}


def retrain(campaign: Annotated[str, typer.Argument(help="campaign name or id")],
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Retrain the campaign's model family now, on the `training` queue (one run at a time per family)."""
    from service.domain.campaigns import get_campaign
    from service.domain.retrain import maybe_enqueue_retrain
    from service.storage.db import session_scope
    from workers.relay import relay_outbox

    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign)
        job = maybe_enqueue_retrain(session, get_settings(), found, trigger="manual", force=True)
        session.commit()
    relay_outbox()
    result = {"campaign": campaign, "queued": job is not None, "job_id": str(job.id) if job else None,
              "reason": None if job else "a run for this model family is already queued or running"}
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out.print(f"retraining queued: job {job.id}" if job else f"not queued: {result['reason']}")


@models_app.command("list")
def list_models(family: Annotated[str | None, typer.Option(help="only this model family")] = None,
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered version with its held-out numbers."""
    from service.domain.registry import list_versions
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        rows = [_public(m) for m in list_versions(session, family=family)]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("family", "version", "promoted", "held-out acc", "ECE", "parent acc (same set)", "pairs", "created")
    for r in rows:
        m = r["metrics"]
        table.add_row(r["family"], str(r["version"]), "yes" if r["promoted"] else "",
                      f"{m.get('heldout_accuracy', float('nan')):.3f}", f"{m.get('calibration_error', float('nan')):.3f}",
                      f"{m['parent_heldout_accuracy']:.3f}" if "parent_heldout_accuracy" in m else "-",
                      str(int(m.get("n_train", 0) + m.get("n_eval", 0))), r["created_at"][:19])
    out.print(table)


@models_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="model version id or FAMILY:VERSION (FAMILY:latest)")],
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One version with its provenance card."""
    from service.domain.provenance import build_card, render_markdown
    from service.domain.registry import get_version
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        model = get_version(session, ref)
        card = build_card(session, model.id)
    if as_json:
        sys.stdout.write(json.dumps({**_public(model), "config": model.config, "card": card}, default=str) + "\n")
        return
    from rich.markdown import Markdown

    out.print(Markdown(render_markdown(card)))
    out.print(f"artifacts: {model.artifact_path} (card.md, card.html beside the weights)")


@models_app.command("promote")
def promote(ref: Annotated[str, typer.Argument(help="model version id or FAMILY:VERSION")]) -> None:
    """Make this version the one its family serves."""
    from service.domain.registry import promote_version
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        model = promote_version(session, ref)
    out.print(f"{model.family} v{model.version} is now promoted")


def export_pairs(campaign: Annotated[str, typer.Argument(help="campaign name or id")],
                 out_path: Annotated[Path, typer.Option("--out", help=".jsonl or .parquet")],
                 fmt: Annotated[str, typer.Option("--format", help="trl (prompt, chosen, rejected[, margin]) | dpo")]
                 = "trl") -> None:
    """Export the reconciled preferences, ready for TRL's RewardTrainer or a DPO step."""
    from service.domain.campaigns import get_campaign
    from service.domain.retrain import build_pairs
    from service.reward import export_dpo, export_trl
    from service.storage.db import session_scope

    if fmt not in ("trl", "dpo"):
        raise typer.BadParameter("--format must be trl or dpo")
    with session_scope(database_url()) as session:
        pairs = build_pairs(session, get_campaign(session, campaign))
    if pairs.empty:
        raise typer.BadParameter(f"campaign {campaign!r} has no reconciled pairwise preferences yet")
    path = (export_trl if fmt == "trl" else export_dpo)(pairs.drop(columns=["judgment_ids"]), out_path)
    out.print(f"wrote {len(pairs)} pairs ({fmt}) to {path}")
