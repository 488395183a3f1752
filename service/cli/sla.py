"""``crowdbridge sla list|set`` and ``crowdbridge analytics-timeseries``: the API's SLA and time-series reads."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.cli.common import database_url

__all__ = ["sla_app", "timeseries"]

sla_app = typer.Typer(help="Per-vendor SLA thresholds that raise alerts in analytics, the dashboard and /metrics.",
                      no_args_is_help=True)
out = Console()


def _row(t: object) -> dict[str, object]:
    return {"vendor": t.vendor, "metric": t.metric, "limit": t.limit, "direction": t.direction}  # type: ignore[attr-defined]


@sla_app.command("list")
def sla_list(vendor: Annotated[str | None, typer.Option()] = None,
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The SLA thresholds in force."""
    from service.domain.analytics import list_sla_thresholds
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        rows = [_row(t) for t in list_sla_thresholds(session, vendor=vendor)]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("vendor", "metric", "limit", "alert when")
    for r in rows:
        table.add_row(str(r["vendor"]), str(r["metric"]), f"{r['limit']:g}",
                      "above" if r["direction"] == "max" else "below")
    out.print(table)


@sla_app.command("set")
def sla_set(vendor: Annotated[str, typer.Argument()], metric: Annotated[str, typer.Argument(
                help="a numeric analytics field, e.g. turnaround_p95_s, cost_per_item_usd, submit_error_rate")],
            limit: Annotated[float, typer.Argument()],
            direction: Annotated[str, typer.Option(help="max: alert above the limit; min: below")] = "max",
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Set (or change) one threshold."""
    from service.domain.analytics import set_sla_threshold
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        row = _row(set_sla_threshold(session, vendor=vendor, metric=metric, limit=limit, direction=direction))
        session.commit()
    if as_json:
        sys.stdout.write(json.dumps(row) + "\n")
    else:
        out.print(f"SLA for {vendor}: alert when {metric} is {'above' if direction == 'max' else 'below'} {limit:g}")


def timeseries(campaign: Annotated[str | None, typer.Option(help="campaign name or id")] = None,
               buckets: Annotated[int, typer.Option(min=1, max=500)] = 24,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Judgments, items and turnaround per vendor and time bucket (the dashboard's throughput chart)."""
    from service.domain.analytics import throughput_series
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        chosen = get_campaign(session, campaign) if campaign else None
        frame = throughput_series(session, campaign_id=chosen.id if chosen else None, buckets=buckets)
    frame["bucket_start"] = frame["bucket_start"].astype(str)
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    table = Table(*(str(c) for c in frame.columns))
    for r in rows:
        table.add_row(*("-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in r.values()))
    out.print(table)
