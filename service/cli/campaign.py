"""``crowdbridge campaign create|push|status|export`` against the configured database and broker."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import select

from connectors.base import JudgmentKind
from service.cli.common import database_url
from service.settings import get_settings

__all__ = ["campaign_app"]

campaign_app = typer.Typer(help="Create, push, watch and export campaigns.", no_args_is_help=True)
out = Console()


@campaign_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="a unique campaign name")],
    items: Annotated[Path, typer.Option(help="JSONL, CSV or Parquet of items (see README)")],
    kind: Annotated[JudgmentKind, typer.Option(help="judgment kind")] = JudgmentKind.pairwise,
    raters: Annotated[int, typer.Option(help="raters per item")] = 5,
    vendor: Annotated[str, typer.Option(help="connector name (crowdbridge connectors list)")] = "simulated",
    instructions: Annotated[str, typer.Option()] = "",
    budget: Annotated[float, typer.Option(help="USD; 0 = unlimited")] = 0.0,
    scale: Annotated[int, typer.Option(help="Likert points for rating campaigns")] = 5,
    model_family: Annotated[str, typer.Option(help="reward-model family to retrain")] = "default",
    extra_vendor: Annotated[list[str] | None, typer.Option(
        help="also eligible for extra rounds of contested items, by measured quality (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a campaign and upload its items (validated as a whole: one bad item rejects the upload)."""
    from service.domain.campaigns import CampaignSpec, add_items, create_campaign
    from service.records import read_item_records
    from service.storage.db import session_scope

    records = read_item_records(items)
    with session_scope(database_url()) as session:
        campaign = create_campaign(session, CampaignSpec(
            name=name, kind=kind, raters_per_item=raters, vendor=vendor, instructions=instructions,
            budget_usd=budget, rating_scale=scale, model_family=model_family,
            extra_vendors=tuple(extra_vendor or ())))
        n = add_items(session, campaign, records)
        session.commit()
    result = {"id": str(campaign.id), "name": name, "kind": kind.value, "items": n}
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out.print(f"created campaign [bold]{name}[/] ({campaign.id}) with {n} items")


@campaign_app.command("push")
def push(name: Annotated[str, typer.Argument(help="campaign name or id")],
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Start the campaign: cut items into batches and hand them to the workers."""
    from service.domain.campaigns import get_campaign, start_campaign
    from service.storage.db import session_scope
    from workers.relay import relay_outbox

    settings = get_settings()
    with session_scope(database_url()) as session:
        campaign = get_campaign(session, name)
        batches = start_campaign(session, settings, campaign)
        session.commit()
    if settings.embedded_broker:
        from service.broker import EmbeddedBroker

        if not EmbeddedBroker(settings.broker_socket).alive():
            out.print("[yellow]no embedded broker is running: start `crowdbridge worker` to process the batches "
                      "(they are kept in the outbox until then)[/]")
            return
    published = relay_outbox()
    result = {"campaign": name, "batches": len(batches), "published": published}
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        out.print(f"{len(batches)} batches queued for {campaign.vendor}")


@campaign_app.command("status")
def status(name: Annotated[str, typer.Argument(help="campaign name or id")],
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Batches by state, judgments, quarantined payloads, consensus and cost."""
    from service.domain.campaigns import campaign_status, get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        report = campaign_status(session, get_campaign(session, name))
    data = {"id": str(report.campaign.id), "name": report.campaign.name, "status": report.campaign.status.value,
            "kind": report.campaign.kind.value, "items": report.items, "batches": report.batches_by_status,
            "judgments": report.judgments, "judgments_expected": report.judgments_expected,
            "quarantined": report.quarantined, "consensus_items": report.consensus_items,
            "contested_items": report.contested_items, "committed_cost_usd": report.committed_cost_usd,
            "spent_usd": report.spent_usd}
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title=f"campaign {report.campaign.name}", show_header=False)
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


@campaign_app.command("export")
def export(name: Annotated[str, typer.Argument(help="campaign name or id")],
           out_path: Annotated[Path, typer.Option("--out", help=".csv, .jsonl or .parquet")],
           what: Annotated[str, typer.Option(help="judgments | consensus")] = "judgments") -> None:
    """Export every stored judgment (with raw payloads) or the consensus labels."""
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope
    from service.storage.models import ConsensusLabel, Judgment

    if what not in ("judgments", "consensus"):
        raise typer.BadParameter("--what must be judgments or consensus")
    with session_scope(database_url()) as session:
        campaign = get_campaign(session, name)
        model = Judgment if what == "judgments" else ConsensusLabel
        rows = [r.model_dump() for r in session.exec(select(model).where(model.campaign_id == campaign.id))]
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, dict | list)).any():
            frame[column] = frame[column].map(json.dumps)
        elif frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    suffix = out_path.suffix
    if suffix == ".csv":
        frame.to_csv(out_path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(out_path, orient="records", lines=True, date_format="iso")
    elif suffix == ".parquet":
        frame.to_parquet(out_path, index=False)
    else:
        raise typer.BadParameter("--out must end in .csv, .jsonl or .parquet")
    out.print(f"wrote {len(frame)} {what} rows to {out_path}")
