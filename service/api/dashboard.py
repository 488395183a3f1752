"""The dashboard: server-rendered pages (Jinja) with SVG charts, bundled assets, no CDN.

Pages need a token of any scope: a browser signs in once at ``/dashboard/login`` (the token
goes into an HttpOnly, SameSite=Strict cookie, honoured only on GET requests). Auditors see
rater ids pseudonymised, as in the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlmodel import Session

from service.api import charts
from service.api.deps import COOKIE, Caller, get_session, require
from service.domain import analytics, audit, queries
from service.domain.campaigns import campaign_status, get_campaign
from service.domain.tokens import Unauthenticated, authenticate
from service.storage.models_api import Scope

__all__ = ["router", "templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _pct(value: Any) -> str:
    return "-" if value is None or value != value else f"{float(value):.1%}"


templates.env.filters["num"] = _num
templates.env.filters["pct"] = _pct
router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)
Viewer = Annotated[Caller, Depends(require(Scope.auditor))]
DB = Annotated[Session, Depends(get_session)]


def _page(request: Request, name: str, caller: Caller | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"caller": caller, **context})


def _throughput_charts(frame: Any) -> tuple[Markup, Markup]:
    by_vendor = {v: part for v, part in frame.groupby("vendor")} if len(frame) else {}
    judgments = charts.line_chart({v: list(zip(p["bucket_start"].dt.to_pydatetime(), p["judgments"], strict=True))
                                   for v, p in by_vendor.items()}, title="Throughput: judgments per bucket",
                                  y_label="judgments")
    turnaround = charts.line_chart({v: list(zip(p["bucket_start"].dt.to_pydatetime(), p["turnaround_p50_s"],
                                                strict=True)) for v, p in by_vendor.items()},
                                   title="Turnaround p50 (s) over time", y_label="seconds")
    return Markup(judgments), Markup(turnaround)


def _accuracy_chart(models: list[Any]) -> Markup:
    series: dict[str, list[Any]] = {}
    for m in models:
        series.setdefault(m.family, []).append((m.created_at, m.metrics.get("heldout_accuracy")))
    return Markup(charts.line_chart(series, title="Reward models: held-out accuracy by version date",
                                    y_label="accuracy", y_min=0.0, y_max=1.0))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, session: DB, token: Annotated[str, Form()]) -> Response:
    try:
        authenticate(session, token.strip())
    except Unauthenticated as exc:
        return templates.TemplateResponse(request, "login.html", {"caller": None, "error": str(exc)}, status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request, caller: Viewer, session: DB) -> HTMLResponse:
    campaigns = [(c, campaign_status(session, c)) for c in queries.campaigns(session)]
    vendors = analytics.vendor_analytics(session)
    throughput, turnaround = _throughput_charts(analytics.throughput_series(session))
    return _page(request, "overview.html", caller, campaigns=campaigns, vendors=vendors, throughput=throughput,
                 turnaround=turnaround, accuracy=_accuracy_chart(audit.model_history(session)))


@router.get("/campaigns/{ref}", response_class=HTMLResponse)
def campaign_page(ref: str, request: Request, caller: Viewer, session: DB) -> HTMLResponse:
    campaign = get_campaign(session, ref)
    status = campaign_status(session, campaign)
    vendors = analytics.vendor_analytics(session, campaign=campaign)
    throughput, turnaround = _throughput_charts(analytics.throughput_series(session, campaign_id=campaign.id))
    report = audit.build_audit(session, campaign.id, pseudonymize=caller.pseudonym, n_boot=100, max_contested=50)
    alpha = [a for a in report.alpha]
    alpha_chart = charts.bar_chart([a.scope for a in alpha], [a.alpha for a in alpha],
                                   intervals=[(a.ci_low, a.ci_high) for a in alpha],
                                   title="Krippendorff's alpha (95% CI), campaign and per vendor", y_label="alpha",
                                   y_max=1.0)
    raters = report.raters
    rater_chart = charts.bar_chart([r.rater for r in raters], [r.agreement for r in raters],
                                   intervals=[(r.ci_low, r.ci_high) for r in raters],
                                   title="Agreement with consensus per rater (95% CI)", y_label="agreement",
                                   y_min=0.0, y_max=1.0)
    hist = report.histogram
    confidence = charts.histogram(list(hist["low"]) + [1.0], list(hist["items"]),
                                  title=f"Consensus confidence ({report.method}), items per bin")
    spend = analytics.spend_series(session, campaign)
    burn: dict[str, list[Any]] = {"spent": list(zip(spend["at"].dt.to_pydatetime(), spend["spent_usd"], strict=True))}
    if campaign.budget_usd > 0 and len(spend):
        burn["budget"] = [(spend["at"].iloc[0].to_pydatetime(), campaign.budget_usd),
                          (spend["at"].iloc[-1].to_pydatetime(), campaign.budget_usd)]
    if len(spend):
        burn["committed"] = [(spend["at"].iloc[0].to_pydatetime(), status.committed_cost_usd),
                             (spend["at"].iloc[-1].to_pydatetime(), status.committed_cost_usd)]
    budget = charts.line_chart(burn, title="Budget burn (USD)", y_label="USD", markers=False)
    return _page(request, "campaign.html", caller, campaign=campaign, status=status, vendors=vendors,
                 throughput=throughput, turnaround=turnaround, alpha_chart=Markup(alpha_chart),
                 rater_chart=Markup(rater_chart), confidence=Markup(confidence), budget=Markup(budget), report=report)


@router.get("/vendors", response_class=HTMLResponse)
def vendors_page(request: Request, caller: Viewer, session: DB, campaign: str | None = None) -> HTMLResponse:
    chosen = get_campaign(session, campaign) if campaign else None
    rows = analytics.vendor_analytics(session, campaign=chosen)
    throughput, turnaround = _throughput_charts(
        analytics.throughput_series(session, campaign_id=chosen.id if chosen else None))
    return _page(request, "vendors.html", caller, rows=rows, chosen=chosen, campaigns=queries.campaigns(session),
                 thresholds=analytics.list_sla_thresholds(session), throughput=throughput, turnaround=turnaround)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, caller: Viewer, session: DB) -> HTMLResponse:
    models = audit.model_history(session)
    return _page(request, "models.html", caller, models=models, accuracy=_accuracy_chart(models),
                 jobs=queries.retrain_jobs(session)[:50])


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(model_id: str, request: Request, caller: Viewer, session: DB) -> HTMLResponse:
    return _page(request, "model_card.html", caller, card=audit.provenance_card(session, model_id))
