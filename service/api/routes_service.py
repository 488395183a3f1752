"""Service-wide routes: health, metrics, vendor analytics and SLAs, retraining, models, tokens, webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlmodel import Session

from service.api.deps import Caller, get_session, get_settings, require
from service.api.schemas import ModelVersionOut, RetrainJobOut, SlaIn, SlaOut, TokenCreated, TokenIn, TokenOut
from service.api.schemas import WebhookOut
from service.api.uploads import read_limited
from service.domain import analytics, audit, queries, tokens, webhooks
from service.domain.campaigns import get_campaign
from service.settings import Settings
from service.storage.db import session_scope
from service.storage.models_api import Scope

__all__ = ["router"]

router = APIRouter()
Auditor = Annotated[Caller, Depends(require(Scope.auditor))]
Admin = Annotated[Caller, Depends(require(Scope.admin))]
DB = Annotated[Session, Depends(get_session)]


@router.get("/healthz", tags=["service"])
def healthz(session: DB) -> JSONResponse:
    """Liveness and database reachability (no token needed)."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as exc:  # noqa: BLE001  the probe reports any database failure as unhealthy
        return JSONResponse({"status": "unhealthy", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", tags=["service"], response_class=Response)
def metrics(caller: Auditor, request: Request) -> Response:
    """Prometheus exposition: queue depth, batches by state, judgments, vendor errors, turnaround, SLA breaches."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/analytics/vendors", tags=["analytics"], response_model=list[analytics.VendorAnalytics])
def vendor_analytics(caller: Auditor, session: DB, campaign: str | None = None, vendor: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> list[Any]:
    """Per vendor (side by side for one campaign): throughput, turnaround, cost, quality, errors, SLA alerts."""
    chosen = get_campaign(session, campaign) if campaign else None
    return analytics.vendor_analytics(session, campaign=chosen, vendor=vendor, since=queries.utc(since),
                                      until=queries.utc(until))


@router.get("/api/v1/analytics/timeseries", tags=["analytics"])
def timeseries(caller: Auditor, session: DB, campaign: str | None = None,
               buckets: int = 24) -> list[dict[str, Any]]:
    """Judgments, items and turnaround per vendor and time bucket."""
    chosen = get_campaign(session, campaign) if campaign else None
    frame = analytics.throughput_series(session, campaign_id=chosen.id if chosen else None,
                                        buckets=min(max(buckets, 1), 500))
    frame["bucket_start"] = frame["bucket_start"].astype(str)
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[no-any-return]


@router.get("/api/v1/sla", tags=["analytics"], response_model=list[SlaOut])
def list_sla(caller: Auditor, session: DB, vendor: str | None = None) -> list[Any]:
    return analytics.list_sla_thresholds(session, vendor=vendor)


@router.put("/api/v1/sla/{vendor}", tags=["analytics"], response_model=SlaOut)
def set_sla(vendor: str, body: SlaIn, caller: Admin, session: DB) -> Any:
    """Set one SLA threshold for a vendor (metric names: the numeric fields of /analytics/vendors)."""
    row = analytics.set_sla_threshold(session, vendor=vendor, metric=body.metric, limit=body.limit,
                                      direction=body.direction)
    session.commit()
    return row


@router.get("/api/v1/retrain-jobs", tags=["models"], response_model=list[RetrainJobOut])
def list_retrain_jobs(caller: Auditor, session: DB, campaign: str | None = None) -> list[Any]:
    return queries.retrain_jobs(session, campaign=get_campaign(session, campaign) if campaign else None)


@router.get("/api/v1/models", tags=["models"], response_model=list[ModelVersionOut])
def list_models(caller: Auditor, session: DB, family: str | None = None) -> list[Any]:
    return queries.model_versions(session, family=family)


@router.get("/api/v1/models/{model_id}/card", tags=["models"])
def model_card(model_id: uuid.UUID, caller: Auditor, session: DB) -> dict[str, Any]:
    """The provenance card: data lineage (snapshot, judgments per vendor), metrics, config, parent."""
    return audit.provenance_card(session, model_id)


@router.get("/api/v1/tokens", tags=["tokens"], response_model=list[TokenOut])
def list_tokens(caller: Admin, session: DB) -> list[Any]:
    return tokens.list_tokens(session)


@router.post("/api/v1/tokens", tags=["tokens"], response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, caller: Admin, session: DB) -> TokenCreated:
    """A new token; the response is the only time its value is shown."""
    issued = tokens.create_token(session, name=body.name, scope=body.scope)
    session.commit()
    return TokenCreated.model_validate({**TokenOut.model_validate(issued.token).model_dump(), "token": issued.plain})


@router.delete("/api/v1/tokens/{token_id}", tags=["tokens"], response_model=TokenOut)
def revoke_token(token_id: uuid.UUID, caller: Admin, session: DB) -> Any:
    token = tokens.revoke_token(session, token_id)
    session.commit()
    return token


def _receive(settings: Settings, vendor: str, headers: dict[str, str], body: bytes) -> WebhookOut:
    with session_scope(settings.resolved_database_url) as session:
        event = webhooks.receive_webhook(session, settings, vendor, headers, body)
        return WebhookOut.model_validate(event)


@router.post("/webhooks/{vendor}", tags=["webhooks"], response_model=WebhookOut, status_code=202,
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}})
async def webhook(vendor: str, request: Request) -> WebhookOut:
    """A vendor's callback. Verified by the vendor's connector where it signs (401 if it does not verify);
    otherwise stored as a hint. Either way the batch it names is polled soon; results come only by polling."""
    from starlette.concurrency import run_in_threadpool

    body = await read_limited(request, request.app.state.api_config.max_webhook_bytes)
    return await run_in_threadpool(_receive, get_settings(request), vendor, dict(request.headers), body)
