"""Campaigns and everything under one: items, lifecycle, batches, judgments, consensus, agreement."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from service.api.config import ApiConfig
from service.api.deps import Caller, get_session, get_settings, require
from service.api.schemas import (
    AgreementOut,
    BatchOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CancelOut,
    ConsensusOut,
    JudgmentOut,
    Page,
    RetrainJobOut,
    UploadOut,
)
from service.api.uploads import FORMATS, spool_upload, upload_format
from service.domain import campaign_control, queries
from service.domain.campaigns import CampaignSpec, add_items, campaign_status, get_campaign, start_campaign
from service.domain.retrain import maybe_enqueue_retrain
from service.errors import InvalidInput
from service.records import read_item_records
from service.settings import Settings
from service.storage.db import session_scope
from service.storage.models import Batch, BatchStatus, Campaign, CampaignStatus, Judgment
from service.storage.models_api import Scope

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
Auditor = Annotated[Caller, Depends(require(Scope.auditor))]
Operator = Annotated[Caller, Depends(require(Scope.operator))]
DB = Annotated[Session, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def campaign_out(session: Session, campaign: Campaign, *, with_status: bool = True) -> CampaignOut:
    out = CampaignOut.model_validate(campaign)
    if with_status:
        r = campaign_status(session, campaign)
        out = out.model_copy(update={
            "items": r.items, "batches_by_status": r.batches_by_status, "judgments": r.judgments,
            "judgments_expected": r.judgments_expected, "quarantined": r.quarantined,
            "consensus_items": r.consensus_items, "contested_items": r.contested_items,
            "committed_cost_usd": r.committed_cost_usd, "spent_usd": r.spent_usd})
    return out


@router.get("/campaigns", response_model=list[CampaignOut])
def list_campaigns(caller: Auditor, session: DB, status: CampaignStatus | None = None) -> list[CampaignOut]:
    return [campaign_out(session, c, with_status=False) for c in queries.campaigns(session, status=status)]


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
def create(body: CampaignIn, caller: Operator, session: DB) -> CampaignOut:
    deadline = queries.utc(body.deadline)
    campaign = campaign_control.create_checked(session, CampaignSpec(**{**body.model_dump(), "deadline": deadline,
                                                                         "extra_vendors": tuple(body.extra_vendors)}))
    session.commit()
    return campaign_out(session, campaign)


@router.get("/campaigns/{ref}", response_model=CampaignOut)
def read(ref: str, caller: Auditor, session: DB) -> CampaignOut:
    return campaign_out(session, get_campaign(session, ref))


@router.patch("/campaigns/{ref}", response_model=CampaignOut)
def update(ref: str, body: CampaignPatch, caller: Operator, session: DB) -> CampaignOut:
    campaign = campaign_control.update_campaign(session, get_campaign(session, ref), budget_usd=body.budget_usd,
                                                deadline=body.deadline, instructions=body.instructions)
    return campaign_out(session, campaign)


def _add_uploaded(settings: Settings, ref: str, path: Any) -> int:
    records = read_item_records(path)
    with session_scope(settings.resolved_database_url) as session:
        n = add_items(session, get_campaign(session, ref), records)
        session.commit()
    return n


@router.post("/campaigns/{ref}/items", response_model=UploadOut, status_code=201, openapi_extra={
    "requestBody": {"required": True, "description": "JSONL, CSV or Parquet (see README); streamed, size-limited",
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}},
                                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_items(ref: str, request: Request, caller: Operator,
                       format: Literal["jsonl", "csv", "parquet"] | None = None) -> UploadOut:  # noqa: A002
    """Append items to a campaign. One bad record rejects the whole upload and says which."""
    settings: Settings = get_settings(request)
    config: ApiConfig = request.app.state.api_config
    kind = upload_format(request, format)
    upload = await spool_upload(request, FORMATS[kind], config.max_upload_bytes)
    try:
        n = await run_in_threadpool(_add_uploaded, settings, ref, upload.path)
    except (ValueError, OSError) as exc:  # a file the parser cannot read at all (e.g. not Parquet)
        raise InvalidInput(f"could not read the upload as {kind}: {exc}") from exc
    finally:
        upload.close()
    return UploadOut(campaign=ref, items_added=n, bytes=upload.size)


@router.post("/campaigns/{ref}/start", response_model=CampaignOut)
def start(ref: str, caller: Operator, session: DB, settings: Annotated[Settings, Depends(get_settings)]) -> CampaignOut:
    """draft or paused -> running: items not yet batched go to the vendor (the workers push them)."""
    campaign = get_campaign(session, ref)
    start_campaign(session, settings, campaign)
    session.commit()
    return campaign_out(session, campaign)


@router.post("/campaigns/{ref}/pause", response_model=CampaignOut)
def pause(ref: str, caller: Operator, session: DB) -> CampaignOut:
    return campaign_out(session, campaign_control.pause_campaign(session, get_campaign(session, ref)))


@router.post("/campaigns/{ref}/cancel", response_model=CancelOut)
def cancel(ref: str, caller: Operator, session: DB, settings: Annotated[Settings, Depends(get_settings)]) -> CancelOut:
    result = campaign_control.cancel_campaign(session, settings, get_campaign(session, ref))
    return CancelOut(campaign=campaign_out(session, result.campaign), cancelled_batches=result.cancelled_batches,
                     vendor_cancel_failed=result.vendor_cancel_failed)


@router.post("/campaigns/{ref}/retrain", response_model=RetrainJobOut | None)
def retrain(ref: str, caller: Operator, session: DB,
            settings: Annotated[Settings, Depends(get_settings)]) -> RetrainJobOut | None:
    """Queue a manual retraining of the campaign's model family (null when one is already queued or running)."""
    job = maybe_enqueue_retrain(session, settings, get_campaign(session, ref), trigger="manual", force=True)
    session.commit()
    return RetrainJobOut.model_validate(job) if job else None


@router.get("/campaigns/{ref}/batches", response_model=list[BatchOut])
def list_batches(ref: str, caller: Auditor, session: DB, status: BatchStatus | None = None) -> list[Batch]:
    return queries.batches(session, get_campaign(session, ref), status=status)


def judgment_out(caller: Caller, j: Judgment) -> JudgmentOut:
    out = JudgmentOut.model_validate(j)
    if caller.pseudonym.enabled:
        return out.model_copy(update={"rater_id": caller.pseudonym(j.rater_id), "raw": None})
    return out


@router.get("/campaigns/{ref}/judgments", response_model=Page[JudgmentOut])
def list_judgments(ref: str, caller: Auditor, session: DB, limit: Limit = 100, cursor: str | None = None,
                   vendor: str | None = None, rater_id: str | None = None, label: str | None = None,
                   item_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> Page[JudgmentOut]:
    """Judgments in the order they were stored, a page at a time (pass ``next_cursor`` back as ``cursor``)."""
    campaign = get_campaign(session, ref)
    filters = queries.judgment_filters(session, campaign, pseudonym=caller.pseudonym, vendor=vendor,
                                       rater_id=rater_id, label=label, item_id=item_id, batch_id=batch_id,
                                       since=since, until=until)
    rows, next_cursor = queries.judgments_page(session, campaign, limit=limit, cursor=cursor, **filters)
    return Page[JudgmentOut](items=[judgment_out(caller, j) for j in rows], next_cursor=next_cursor)


def _export(rows: Iterator[dict[str, Any]], fmt: str, name: str) -> Response:
    if fmt == "parquet":
        frame = pd.DataFrame(list(rows))
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'})

    def lines() -> Iterator[str]:
        header = None
        for row in rows:
            if fmt == "jsonl":
                yield json.dumps(row, default=str) + "\n"
                continue
            if header is None:
                header = list(row)
                yield pd.DataFrame(columns=header).to_csv(index=False)
            yield pd.DataFrame([row], columns=header).to_csv(index=False, header=False)

    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    return StreamingResponse(lines(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


def _flat(out: Any) -> dict[str, Any]:
    row = out.model_dump(mode="json")
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}


@router.get("/campaigns/{ref}/judgments/export", response_class=Response, responses={200: {"content": {
    "text/csv": {}, "application/x-ndjson": {}, "application/vnd.apache.parquet": {}}}})
def export_judgments(ref: str, caller: Auditor, session: DB,
                     format: Literal["csv", "jsonl", "parquet"] = "csv",  # noqa: A002
                     vendor: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> Response:
    """Every matching judgment, streamed (CSV/JSONL) a chunk at a time."""
    campaign = get_campaign(session, ref)
    filters = queries.judgment_filters(session, campaign, pseudonym=caller.pseudonym, vendor=vendor, since=since,
                                       until=until)
    rows = (_flat(judgment_out(caller, j)) for j in queries.iter_judgments(session, campaign, **filters))
    return _export(rows, format, f"{campaign.name}-judgments")


@router.get("/campaigns/{ref}/consensus", response_model=Page[ConsensusOut])
def list_consensus(ref: str, caller: Auditor, session: DB, method: str | None = None,
                   contested: bool | None = None, limit: Limit = 100, cursor: str | None = None) -> Page[ConsensusOut]:
    rows, next_cursor = queries.consensus_page(session, get_campaign(session, ref), method=method,
                                               contested=contested, limit=limit, cursor=cursor)
    return Page[ConsensusOut](items=[ConsensusOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/campaigns/{ref}/consensus/export", response_class=Response, responses={200: {"content": {
    "text/csv": {}, "application/x-ndjson": {}, "application/vnd.apache.parquet": {}}}})
def export_consensus(ref: str, caller: Auditor, session: DB, method: str | None = None,
                     format: Literal["csv", "jsonl", "parquet"] = "csv") -> Response:  # noqa: A002
    campaign = get_campaign(session, ref)

    def rows() -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page, cursor = queries.consensus_page(session, campaign, method=method, contested=None, limit=2000,
                                                  cursor=cursor)
            yield from (_flat(ConsensusOut.model_validate(r)) for r in page)
            if cursor is None:
                return

    return _export(rows(), format, f"{campaign.name}-consensus")


@router.get("/campaigns/{ref}/agreement", response_model=list[AgreementOut])
def list_agreement(ref: str, caller: Auditor, session: DB,
                   scope: Literal["campaign", "vendor", "batch", "rater"] | None = None) -> list[AgreementOut]:
    """Krippendorff's α per campaign/vendor/batch and each rater's accuracy against the consensus."""
    rows = [AgreementOut.model_validate(r) for r in queries.agreement(session, get_campaign(session, ref), scope=scope)]
    if caller.pseudonym.enabled:
        rows = [r.model_copy(update={"scope_key": caller.pseudonym(r.scope_key)}) if r.scope == "rater" else r
                for r in rows]
    return rows


@router.get("/campaigns/{ref}/audit", response_class=HTMLResponse)
def audit_report(ref: str, caller: Auditor, session: DB) -> HTMLResponse:
    """The rater-agreement audit as one self-contained HTML page (charts embedded as SVG)."""
    from service.api.reports import render_audit_html
    from service.domain.audit import build_audit

    report = build_audit(session, ref, pseudonymize=caller.pseudonym)
    return HTMLResponse(render_audit_html(report))
