"""Read queries behind the API's list routes and the CLI's read commands: filters and keyset (cursor)
pagination, no business rules. Both surfaces call these, so they list the same rows in the same order.

A cursor is opaque to clients: url-safe base64 of the last row's sort key. Keyset pagination
(``WHERE (received_at, id) > (:t, :id)``) stays fast and stable while judgments keep arriving,
where OFFSET would skip or repeat rows.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from service.domain.tokens import Pseudonymizer
from service.errors import InvalidInput
from service.storage.models import (
    AgreementReport,
    Batch,
    BatchStatus,
    Campaign,
    ConsensusLabel,
    Judgment,
    ModelVersion,
    RetrainJob,
)

__all__ = ["agreement", "batches", "campaigns", "consensus_page", "decode_cursor", "encode_cursor",
           "iter_judgments", "judgment_filters", "judgments_page", "model_versions", "retrain_jobs", "utc"]


def utc(value: datetime | None) -> datetime | None:
    """Query datetimes without a zone are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else str(p) for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(parts, list) or len(parts) != n or not all(isinstance(p, str) for p in parts):
            raise ValueError
        return parts
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor; pass back the next_cursor of the previous page unchanged") from None


def campaigns(session: Session, *, status: str | None = None) -> list[Campaign]:
    query = select(Campaign).order_by(col(Campaign.created_at).desc())
    if status is not None:
        query = query.where(Campaign.status == status)
    return list(session.exec(query))


def batches(session: Session, campaign: Campaign, *, status: BatchStatus | None = None) -> list[Batch]:
    query = select(Batch).where(Batch.campaign_id == campaign.id).order_by(col(Batch.created_at), col(Batch.id))
    if status is not None:
        query = query.where(Batch.status == status)
    return list(session.exec(query))


def judgment_filters(session: Session, campaign: Campaign, *, pseudonym: Pseudonymizer | None = None,
                     vendor: str | None = None, rater_id: str | None = None, label: str | None = None,
                     item_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """The keyword filters of ``judgments_page``/``iter_judgments``. With an enabled ``pseudonym`` (an
    auditor's ``Pseudonymizer``) ``rater_id`` is a pseudonym, mapped back over this campaign's raters."""
    raters = None
    if rater_id is not None:
        if pseudonym is not None and pseudonym.enabled:
            known = session.exec(select(Judgment.rater_id).where(Judgment.campaign_id == campaign.id).distinct())
            raters = [r for r in known if pseudonym(r) == rater_id]
        else:
            raters = [rater_id]
    return {"vendor": vendor, "rater_ids": raters, "label": label, "item_id": item_id, "batch_id": batch_id,
            "since": since, "until": until}


def _judgment_query(campaign: Campaign, *, vendor: str | None = None, rater_ids: list[str] | None = None,
                    label: str | None = None, item_id: uuid.UUID | None = None, batch_id: uuid.UUID | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> Any:
    query = select(Judgment).where(Judgment.campaign_id == campaign.id)
    if vendor is not None:
        query = query.where(Judgment.vendor == vendor)
    if rater_ids is not None:
        query = query.where(col(Judgment.rater_id).in_(rater_ids))
    if label is not None:
        query = query.where(Judgment.label == label)
    if item_id is not None:
        query = query.where(Judgment.item_id == item_id)
    if batch_id is not None:
        query = query.where(Judgment.batch_id == batch_id)
    if since is not None:
        query = query.where(Judgment.received_at >= utc(since))
    if until is not None:
        query = query.where(Judgment.received_at < utc(until))
    return query.order_by(col(Judgment.received_at), col(Judgment.id))


def judgments_page(session: Session, campaign: Campaign, *, limit: int, cursor: str | None = None,
                   **filters: Any) -> tuple[list[Judgment], str | None]:
    query = _judgment_query(campaign, **filters)
    if cursor:
        at, last = decode_cursor(cursor, 2)
        try:
            after, last_id = utc(datetime.fromisoformat(at)), uuid.UUID(last)
        except ValueError:
            raise InvalidInput("invalid cursor") from None
        query = query.where(or_(col(Judgment.received_at) > after,
                                and_(col(Judgment.received_at) == after, col(Judgment.id) > last_id)))
    rows = list(session.exec(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].received_at, rows[-1].id) if more else None


def iter_judgments(session: Session, campaign: Campaign, *, chunk: int = 2000, **filters: Any) -> Iterator[Judgment]:
    """Every matching judgment, read a chunk at a time (for streamed exports)."""
    cursor = None
    while True:
        rows, cursor = judgments_page(session, campaign, limit=chunk, cursor=cursor, **filters)
        yield from rows
        if cursor is None:
            return


def consensus_page(session: Session, campaign: Campaign, *, method: str | None, contested: bool | None,
                   limit: int, cursor: str | None = None) -> tuple[list[ConsensusLabel], str | None]:
    query = select(ConsensusLabel).where(ConsensusLabel.campaign_id == campaign.id)
    if method is not None:
        query = query.where(ConsensusLabel.method == method)
    if contested is not None:
        query = query.where(ConsensusLabel.contested == contested)
    if cursor:
        (last,) = decode_cursor(cursor, 1)
        try:
            query = query.where(col(ConsensusLabel.id) > uuid.UUID(last))
        except ValueError:
            raise InvalidInput("invalid cursor") from None
    rows = list(session.exec(query.order_by(col(ConsensusLabel.id)).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].id) if more else None


def agreement(session: Session, campaign: Campaign, *, scope: str | None = None) -> list[AgreementReport]:
    query = select(AgreementReport).where(AgreementReport.campaign_id == campaign.id)
    if scope is not None:
        query = query.where(AgreementReport.scope == scope)
    else:  # the incremental reconciler's internal state rows are not a report
        query = query.where(AgreementReport.scope != "state")
    return list(session.exec(query.order_by(col(AgreementReport.scope), col(AgreementReport.scope_key))))


def retrain_jobs(session: Session, *, campaign: Campaign | None = None) -> list[RetrainJob]:
    query = select(RetrainJob).order_by(col(RetrainJob.created_at).desc())
    if campaign is not None:
        query = query.where(RetrainJob.campaign_id == campaign.id)
    return list(session.exec(query))


def model_versions(session: Session, *, family: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(col(ModelVersion.family), col(ModelVersion.version))
    if family is not None:
        query = query.where(ModelVersion.family == family)
    return list(session.exec(query))
