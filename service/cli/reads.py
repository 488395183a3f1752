"""The CLI's read commands, mirroring the API's read routes: ``crowdbridge campaign list|batches|judgments|
consensus|agreement`` and ``crowdbridge retrain-jobs``.

Each command resolves its campaign with ``get_campaign`` (an unknown one raises ``NotFound``, which
``service.cli.main`` prints as ``error (not_found): ...`` with exit code 2) and calls the same function of
``service.domain.queries`` as the route, so both list the same rows in the same order with the same cursors.
Output is a rich table, or with ``--json`` one JSON document whose rows carry the fields of the route's
response schema (``service.api.schemas``; not imported here, to keep FastAPI out of the CLI's start-up).
The CLI reads the database directly, as an operator would: rater ids are shown as stored, not pseudonymised.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from service.cli.common import database_url
from service.storage.models import BatchStatus, CampaignStatus

__all__ = ["agreement", "batches", "campaigns", "consensus", "judgments", "retrain_jobs"]

out = Console()
err = Console(stderr=True)

# the fields of the API's CampaignOut (list route: no status counts), BatchOut, JudgmentOut, ConsensusOut,
# AgreementOut (+ details: the flags live there) and RetrainJobOut; tests/cli/test_reads.py checks them
CAMPAIGN_FIELDS = ("id", "name", "kind", "status", "vendor", "raters_per_item", "rating_scale", "budget_usd",
                   "deadline", "model_family", "max_extra_rounds", "created_at")
BATCH_FIELDS = ("id", "campaign_id", "vendor", "round", "status", "n_items", "raters_per_item",
                "judgments_expected", "judgments_done", "expected_cost", "vendor_batch_id", "created_at",
                "submitted_at", "completed_at", "error")
JUDGMENT_FIELDS = ("id", "campaign_id", "item_id", "batch_id", "vendor", "vendor_judgment_id", "rater_id", "label",
                   "started_at", "submitted_at", "received_at", "cost", "raw")
CONSENSUS_FIELDS = ("item_id", "method", "label", "confidence", "posterior", "n_judgments", "contested",
                    "computed_at")
AGREEMENT_FIELDS = ("scope", "scope_key", "metric", "value", "ci_low", "ci_high", "n", "computed_at", "details")
RETRAIN_JOB_FIELDS = ("id", "campaign_id", "model_family", "trigger", "status", "model_version_id", "created_at",
                      "started_at", "finished_at", "error")
AGREEMENT_SCOPES = ("campaign", "vendor", "batch", "rater")  # the API's ?scope= values (not the internal state)

AsJson = Annotated[bool, typer.Option("--json", help="print one JSON document instead of a table")]
CampaignRef = Annotated[str, typer.Argument(help="campaign name or id")]


def _table(*columns: str, title: str) -> Table:
    """Long ids and names fold onto the next line rather than being cut off in narrow terminals."""
    table = Table(*columns, title=title)
    for column in table.columns:
        column.overflow = "fold"
    return table


def _rows(objs: Iterable[Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [obj.model_dump(mode="json", include=set(fields)) for obj in objs]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _t(value: str | None) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS'."""
    return "-" if value is None else value[:19].replace("T", " ")


def _more(next_cursor: str | None) -> None:
    if next_cursor:
        err.print(f"more rows: pass [bold]--cursor {next_cursor}[/]")


def campaigns(status: Annotated[CampaignStatus | None, typer.Option(help="only campaigns in this state")] = None,
              as_json: AsJson = False) -> None:
    """Every campaign, newest first (GET /api/v1/campaigns)."""
    from service.domain import queries
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        rows = _rows(queries.campaigns(session, status=status), CAMPAIGN_FIELDS)
    if as_json:
        _print_json(rows)
        return
    table = _table("name", "id", "kind", "status", "vendor", "raters/item", "budget USD", "deadline", "created",
                  title="campaigns")
    for r in rows:
        table.add_row(r["name"], r["id"], r["kind"], r["status"], r["vendor"], str(r["raters_per_item"]),
                      _f(r["budget_usd"], 2) if r["budget_usd"] else "unlimited", _t(r["deadline"]),
                      _t(r["created_at"]))
    out.print(table)


def batches(campaign: CampaignRef,
            status: Annotated[BatchStatus | None, typer.Option(help="only batches in this state")] = None,
            as_json: AsJson = False) -> None:
    """A campaign's batches in the order they were cut (GET /api/v1/campaigns/{ref}/batches)."""
    from service.domain import queries
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign)
        rows = _rows(queries.batches(session, found, status=status), BATCH_FIELDS)
        name = found.name
    if as_json:
        _print_json(rows)
        return
    table = _table("id", "round", "status", "items", "judgments", "expected USD", "vendor batch", "submitted",
                  "completed", "error", title=f"batches of {name}")
    for r in rows:
        table.add_row(r["id"], str(r["round"]), r["status"], str(r["n_items"]),
                      f"{r['judgments_done']} / {r['judgments_expected']}", _f(r["expected_cost"], 2),
                      r["vendor_batch_id"] or "-", _t(r["submitted_at"]), _t(r["completed_at"]), r["error"] or "")
    out.print(table)


def judgments(campaign: CampaignRef,
              limit: Annotated[int, typer.Option(min=1, max=1000, help="rows per page")] = 100,
              cursor: Annotated[str | None, typer.Option(help="the next_cursor of the previous page")] = None,
              rater: Annotated[str | None, typer.Option(help="only this rater id")] = None,
              vendor: Annotated[str | None, typer.Option(help="only this vendor")] = None,
              label: Annotated[str | None, typer.Option(help="only this label")] = None,
              as_json: AsJson = False) -> None:
    """One page of judgments in the order they were stored (GET /api/v1/campaigns/{ref}/judgments)."""
    from service.domain import queries
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign)
        filters = queries.judgment_filters(session, found, vendor=vendor, rater_id=rater, label=label)
        page, next_cursor = queries.judgments_page(session, found, limit=limit, cursor=cursor, **filters)
        rows = _rows(page, JUDGMENT_FIELDS)
        name = found.name
    if as_json:
        _print_json({"items": rows, "next_cursor": next_cursor})
        return
    table = _table("received", "vendor", "rater", "item", "label", "seconds", "USD", title=f"judgments of {name}")
    for r in rows:
        seconds = None if r["started_at"] is None else (
            datetime.fromisoformat(r["submitted_at"]) - datetime.fromisoformat(r["started_at"])).total_seconds()
        table.add_row(_t(r["received_at"]), r["vendor"], r["rater_id"], r["item_id"], r["label"], _f(seconds, 1),
                      _f(r["cost"], 4))
    out.print(table)
    _more(next_cursor)


def consensus(campaign: CampaignRef,
              method: Annotated[str, typer.Option(help="mv, ds, auto (the method chosen without gold) or all")]
              = "auto",
              contested: Annotated[bool, typer.Option("--contested", help="only contested items")] = False,
              limit: Annotated[int, typer.Option(min=1, max=1000, help="rows per page")] = 100,
              cursor: Annotated[str | None, typer.Option(help="the next_cursor of the previous page")] = None,
              as_json: AsJson = False) -> None:
    """One page of consensus labels (GET /api/v1/campaigns/{ref}/consensus)."""
    from service.domain import queries
    from service.domain.campaigns import get_campaign
    from service.domain.reconcile import CONSENSUS_METHODS
    from service.storage.db import session_scope

    if method != "all" and method not in CONSENSUS_METHODS:
        raise typer.BadParameter(f"must be one of {', '.join(CONSENSUS_METHODS)} or all", param_hint="--method")
    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign)
        page, next_cursor = queries.consensus_page(session, found, method=None if method == "all" else method,
                                                   contested=True if contested else None, limit=limit, cursor=cursor)
        rows = _rows(page, CONSENSUS_FIELDS)
        name = found.name
    if as_json:
        _print_json({"items": rows, "next_cursor": next_cursor})
        return
    table = _table("item", "method", "label", "confidence", "judgments", "contested", "posterior",
                  title=f"consensus of {name}" + (" (contested only)" if contested else ""))
    for r in rows:
        posterior = ", ".join(f"{k}: {v:.2f}" for k, v in sorted(r["posterior"].items(), key=lambda kv: -kv[1]))
        table.add_row(r["item_id"], r["method"], r["label"], _f(r["confidence"]), str(r["n_judgments"]),
                      "yes" if r["contested"] else "", posterior)
    out.print(table)
    _more(next_cursor)


def agreement(campaign: CampaignRef,
              scope: Annotated[str | None, typer.Option(help="campaign, vendor, batch or rater (default: all)")]
              = None,
              as_json: AsJson = False) -> None:
    """The stored agreement reports of the last reconcile: Krippendorff's α (with its CI for the campaign),
    Fleiss' κ and percent agreement per campaign, vendor and batch; each rater's accuracy against the
    consensus and flags (GET /api/v1/campaigns/{ref}/agreement, plus each row's details)."""
    from service.domain import queries
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    if scope is not None and scope not in AGREEMENT_SCOPES:
        raise typer.BadParameter(f"must be one of {', '.join(AGREEMENT_SCOPES)}", param_hint="--scope")
    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign)
        reports = [r for r in queries.agreement(session, found, scope=scope) if r.scope in AGREEMENT_SCOPES]
        rows = _rows(reports, AGREEMENT_FIELDS)
        name = found.name
    if as_json:
        _print_json(rows)
        return
    _agreement_tables(name, rows)


def _agreement_tables(name: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print(f"no agreement reports for {name} yet: they are written when its judgments are reconciled")
        return
    groups = _table("scope", "key", "metric", "value", "95% CI", "n", title=f"agreement in {name}")
    raters: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: AGREEMENT_SCOPES.index(r["scope"])):  # campaign, vendor, batch first
        if r["scope"] == "rater":
            entry = raters.setdefault(r["scope_key"], {"n": r["n"]})
            if r["metric"] == "accuracy_vs_consensus":
                entry["accuracy"] = r["value"]
            elif r["metric"] == "flags":
                entry.update(kappa=r["details"].get("kappa"), flags=r["details"].get("flags") or "")
            continue
        if r["metric"] == "consensus_method":
            value = str(r["details"].get("chosen", "-"))
        else:
            value = _f(r["value"])
        ci = f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]" if r["ci_low"] is not None else ""
        groups.add_row(r["scope"], r["scope_key"], r["metric"], value, ci, str(r["n"]))
    if groups.row_count:
        out.print(groups)
    if raters:
        table = _table("rater", "judgments", "accuracy vs consensus", "κ vs consensus", "flags",
                      title=f"raters in {name} (flagged first)")
        for key, r in sorted(raters.items(), key=lambda kv: (not kv[1].get("flags"), kv[1].get("accuracy") or 0)):
            table.add_row(key, str(r["n"]), _f(r.get("accuracy")), _f(r.get("kappa")), r.get("flags") or "")
        out.print(table)


def retrain_jobs(campaign: Annotated[str | None, typer.Option(help="only this campaign (name or id)")] = None,
                 as_json: AsJson = False) -> None:
    """Reward-model retraining jobs, newest first (GET /api/v1/retrain-jobs)."""
    from service.domain import queries
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        found = get_campaign(session, campaign) if campaign else None
        rows = _rows(queries.retrain_jobs(session, campaign=found), RETRAIN_JOB_FIELDS)
    if as_json:
        _print_json(rows)
        return
    table = _table("id", "campaign", "family", "trigger", "status", "model version", "created", "finished", "error",
                  title="retraining jobs")
    for r in rows:
        table.add_row(r["id"], r["campaign_id"], r["model_family"], r["trigger"], r["status"],
                      r["model_version_id"] or "-", _t(r["created_at"]), _t(r["finished_at"]), r["error"] or "")
    out.print(table)
