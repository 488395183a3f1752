"""``crowdbridge api``, ``crowdbridge tokens create|revoke|list``, ``crowdbridge audit``, ``crowdbridge analytics``."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.cli.common import database_url, print_json
from service.settings import get_settings
from service.storage.models_api import Scope

__all__ = ["analytics", "api", "audit", "tokens_app"]

out = Console()
tokens_app = typer.Typer(help="API tokens (stored hashed; the value is shown once).", no_args_is_help=True)


def api(host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option()] = 8000) -> None:
    """Serve the REST API, the dashboard (/dashboard), /metrics and vendor webhooks."""
    from service.api import serve

    out.print(f"crowdbridge API on http://{host}:{port}  (dashboard /dashboard, docs /docs)")
    serve(get_settings(), host=host, port=port)


@tokens_app.command("create")
def tokens_create(name: Annotated[str, typer.Argument(help="who or what uses the token")],
                  scope: Annotated[Scope, typer.Option(help="admin | operator | auditor")] = Scope.auditor,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Create a token. Its value is printed once; only its hash is kept."""
    from service.domain.tokens import create_token
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        issued = create_token(session, name=name, scope=scope)
        session.commit()
    if as_json:
        print_json({"id": str(issued.token.id), "name": name, "scope": scope.value, "token": issued.plain})
    else:
        out.print(f"token [bold]{name}[/] ({scope.value}), id {issued.token.id}:")
        sys.stdout.write(issued.plain + "\n")


@tokens_app.command("revoke")
def tokens_revoke(ref: Annotated[str, typer.Argument(help="token id or name")]) -> None:
    """Revoke a token (by id, or the live token with that name). Revoking twice is not an error."""
    from service.domain.tokens import revoke_token
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        token = revoke_token(session, ref)
        session.commit()
    out.print(f"revoked token {token.name} ({token.id})")


@tokens_app.command("list")
def tokens_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every token: name, scope, prefix, last use, revoked or not (never the value)."""
    from service.domain.tokens import list_tokens
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        rows = [{"id": str(t.id), "name": t.name, "scope": t.scope.value, "prefix": t.prefix,
                 "created_at": t.created_at, "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
                for t in list_tokens(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "scope", "prefix", "last used", "revoked")
    for r in rows:
        table.add_row(r["name"], r["scope"], r["prefix"], str(r["last_used_at"] or "-"), str(r["revoked_at"] or "-"))
    out.print(table)


def audit(campaign: Annotated[str, typer.Argument(help="campaign name or id")],
          out_path: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
          plain_ids: Annotated[bool, typer.Option(help="show real rater ids (default: pseudonymised)")] = False) -> None:
    """Write the rater-agreement audit (charts embedded as SVG) to one self-contained HTML file."""
    from service.api.reports import render_audit_html
    from service.domain.audit import build_audit
    from service.domain.tokens import pseudonymizer
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        name = pseudonymizer(session, Scope.admin if plain_ids else Scope.auditor)
        report = build_audit(session, campaign, pseudonymize=name)
        html = render_audit_html(report)
    out_path.write_text(html, encoding="utf-8")
    out.print(f"wrote the audit of {report.campaign.name} ({report.items} items, {len(report.flagged)} flagged "
              f"raters, {len(report.contested)} contested items) to {out_path}")


def analytics(campaign: Annotated[str | None, typer.Option(help="campaign name or id")] = None,
              vendor: Annotated[str | None, typer.Option()] = None,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Vendor analytics: throughput, turnaround, cost, quality, errors and SLA alerts, one row per vendor."""
    from service.domain.analytics import vendor_analytics
    from service.domain.campaigns import get_campaign
    from service.storage.db import session_scope

    with session_scope(database_url()) as session:
        chosen = get_campaign(session, campaign) if campaign else None
        rows = vendor_analytics(session, campaign=chosen, vendor=vendor)
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    table = Table("vendor", "items/h", "judgments/h", "turnaround p50/p95/p99 s", "USD/item", "agreement", "alpha",
                  "alerts")
    f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    for r in rows:
        table.add_row(r.vendor, f(r.items_per_hour, 1), f(r.judgments_per_hour, 1),
                      f"{f(r.turnaround_p50_s)} / {f(r.turnaround_p95_s)} / {f(r.turnaround_p99_s)}",
                      f(r.cost_per_item_usd, 4), f(r.agreement_with_consensus, 3), f(r.krippendorff_alpha, 3),
                      "; ".join(a.message for a in r.alerts) or "-")
    out.print(table)
