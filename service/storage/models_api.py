"""Tables of the service API: hashed API tokens, vendor SLA thresholds, webhook events, API secrets.

Kept apart from ``models.py`` so the pipeline's tables do not depend on the API's. Alembic
revision ``0002_api`` creates them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.storage.types import JSONType, UTCDateTime, new_id, utcnow

__all__ = ["ApiSecret", "ApiToken", "Scope", "SlaThreshold", "WebhookEvent"]


class Scope(str, enum.Enum):
    """What a token may do. Each scope includes the ones below it: admin > operator > auditor."""

    auditor = "auditor"  # read-only; rater ids pseudonymised, raw vendor payloads withheld
    operator = "operator"  # runs campaigns: create, upload, start, pause, cancel, retrain
    admin = "admin"  # everything, plus tokens and SLA thresholds

    @property
    def rank(self) -> int:
        return {"auditor": 1, "operator": 2, "admin": 3}[self.value]


class ApiToken(SQLModel, table=True):
    """An API token. Only its SHA-256 is stored; the plain token is shown once, at creation."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=120)
    scope: Scope
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)  # the first characters, to recognise a token in a list
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SlaThreshold(SQLModel, table=True):
    """A vendor's service level on one analytics metric: ``max`` (e.g. turnaround_p95_s) or ``min``."""

    __table_args__ = (UniqueConstraint("vendor", "metric", name="uq_sla_vendor_metric"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    vendor: str = Field(max_length=64, index=True)
    metric: str = Field(max_length=64)
    limit: float
    direction: str = Field(default="max", max_length=8)  # max | min
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class WebhookEvent(SQLModel, table=True):
    """A vendor's webhook call as received: raw body and headers, whether it was verified, what it did.

    ``delivery_key`` (verified deliveries only) is the vendor's delivery id (Standard Webhooks ``webhook-id``,
    Prolific ``X-Event-ID``, Toloka's event uuid) or a SHA-256 of the body; unique per vendor, so a replayed
    or re-delivered message is recognised and acted on once."""

    __table_args__ = (UniqueConstraint("vendor", "delivery_key", name="uq_webhookevent_vendor_delivery"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    vendor: str = Field(max_length=64, index=True)
    verified: bool | None = None  # None: the vendor does not sign, the event is only a hint to poll
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="batch.id", index=True)
    outcome: str = Field(default="stored", max_length=32)  # poll_requested | no_batch | stored | replay
    delivery_key: str | None = Field(default=None, max_length=200)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ApiSecret(SQLModel, table=True):
    """Service-generated secrets (e.g. the key that pseudonymises rater ids for auditors)."""

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
