"""Request and response bodies of the REST API (what the OpenAPI schema documents)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import JudgmentKind
from service.storage.models import BatchStatus, CampaignStatus, RetrainStatus
from service.storage.models_api import Scope

__all__ = ["AgreementOut", "BatchOut", "CampaignIn", "CampaignOut", "CampaignPatch", "CancelOut", "ConsensusOut",
           "JudgmentOut", "ModelVersionOut", "Page", "RetrainJobOut", "SlaIn", "SlaOut", "TokenCreated", "TokenIn",
           "TokenOut", "UploadOut", "WebhookOut"]

T = TypeVar("T")
Text = Field(default="", max_length=20_000)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page; null at the end")


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f/]+$")
    kind: JudgmentKind = JudgmentKind.pairwise
    raters_per_item: int = Field(5, ge=1, le=100)
    instructions: str = Text
    vendor: str = Field("simulated", min_length=1, max_length=64)
    rating_scale: int = Field(5, ge=2, le=10)
    budget_usd: float = Field(0.0, ge=0, le=1e12, description="0 = unlimited", allow_inf_nan=False)
    deadline: datetime | None = None
    model_family: str = Field("default", min_length=1, max_length=120)
    max_extra_rounds: int = Field(1, ge=0, le=10)
    extra_vendors: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20,
        description="vendors that extra rounds for contested items may also go to, chosen by measured quality")


class CampaignPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_usd: float | None = Field(None, ge=0, le=1e12, allow_inf_nan=False)
    deadline: datetime | None = None
    instructions: str | None = Field(None, max_length=20_000)


class CampaignOut(_Out):
    id: uuid.UUID
    name: str
    kind: JudgmentKind
    status: CampaignStatus
    vendor: str
    raters_per_item: int
    rating_scale: int
    budget_usd: float
    deadline: datetime | None
    model_family: str
    max_extra_rounds: int
    extra_vendors: list[str] = []
    created_at: datetime
    items: int | None = None
    batches_by_status: dict[str, int] | None = None
    judgments: int | None = None
    judgments_expected: int | None = None
    quarantined: int | None = None
    consensus_items: int | None = None
    contested_items: int | None = None
    committed_cost_usd: float | None = None
    spent_usd: float | None = None


class UploadOut(BaseModel):
    campaign: str
    items_added: int
    bytes: int


class CancelOut(BaseModel):
    campaign: CampaignOut
    cancelled_batches: int
    vendor_cancel_failed: list[str]


class BatchOut(_Out):
    id: uuid.UUID
    campaign_id: uuid.UUID
    vendor: str
    round: int
    status: BatchStatus
    n_items: int
    raters_per_item: int
    judgments_expected: int
    judgments_done: int
    expected_cost: float
    vendor_batch_id: str | None
    created_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    error: str | None


class JudgmentOut(_Out):
    id: uuid.UUID
    campaign_id: uuid.UUID
    item_id: uuid.UUID
    batch_id: uuid.UUID | None
    vendor: str
    vendor_judgment_id: str
    rater_id: str = Field(description="pseudonymised (r_ + HMAC) for auditor tokens")
    label: str
    started_at: datetime | None
    submitted_at: datetime
    received_at: datetime
    cost: float | None
    raw: dict[str, Any] | None = Field(None, description="the vendor's record; withheld from auditors")


class ConsensusOut(_Out):
    item_id: uuid.UUID
    method: str
    label: str
    confidence: float
    posterior: dict[str, float]
    n_judgments: int
    contested: bool
    computed_at: datetime


class AgreementOut(_Out):
    scope: str
    scope_key: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    computed_at: datetime


class RetrainJobOut(_Out):
    id: uuid.UUID
    campaign_id: uuid.UUID
    model_family: str
    trigger: str
    status: RetrainStatus
    model_version_id: uuid.UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class ModelVersionOut(_Out):
    id: uuid.UUID
    family: str
    version: int
    campaign_id: uuid.UUID
    parent_id: uuid.UUID | None
    dataset_hash: str
    metrics: dict[str, Any]
    promoted: bool
    created_at: datetime


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    scope: Scope


class TokenOut(_Out):
    id: uuid.UUID
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown once, stored only as a hash")


class SlaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=64)
    limit: float = Field(allow_inf_nan=False)
    direction: str = Field("max", pattern="^(max|min)$")


class SlaOut(_Out):
    vendor: str
    metric: str
    limit: float
    direction: str


class WebhookOut(_Out):
    id: uuid.UUID
    vendor: str
    verified: bool | None
    outcome: str
    received_at: datetime
