"""SQLModel tables. Alembic owns the schema (``service/storage/migrations``).

Ids are UUIDs, timestamps timezone-aware UTC, statuses Enums. Every judgment is traceable
to the model versions it trained: judgment -> snapshot_judgment -> dataset_snapshot
-> model_version.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from connectors.base import JudgmentKind
from service.storage.types import JSONType, UTCDateTime, new_id, utcnow

__all__ = [
    "AgreementReport",
    "Batch",
    "BatchItem",
    "BatchStatus",
    "Campaign",
    "CampaignStatus",
    "ConsensusLabel",
    "DatasetSnapshot",
    "Item",
    "Judgment",
    "JudgmentKind",
    "ModelVersion",
    "OutboxMessage",
    "QuarantinedPayload",
    "RedactionRecord",
    "RetrainJob",
    "RetrainStatus",
    "SnapshotJudgment",
    "SubmissionAttempt",
]


def _ts(nullable: bool = False, index: bool = False) -> Any:
    column = Column(UTCDateTime(), nullable=nullable, index=index)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


def _now() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _json(default: Any = None) -> Any:
    if default is None:
        return Field(default=None, sa_column=Column(JSONType, nullable=True))
    return Field(default_factory=default, sa_column=Column(JSONType, nullable=False))


class CampaignStatus(str, enum.Enum):
    draft = "draft"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


class BatchStatus(str, enum.Enum):
    """pending -> submitting -> submitted -> completed; failed and cancelled end it.

    ``submitting`` may be re-entered (a killed worker's retry); the vendor idempotency key
    makes that safe. See ``service.domain.batches.TRANSITIONS``.
    """

    pending = "pending"
    submitting = "submitting"
    submitted = "submitted"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class RetrainStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class Campaign(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    kind: JudgmentKind
    raters_per_item: int = Field(ge=1, le=100)
    instructions: str = Field(default="", sa_column=Column(Text, nullable=False))
    vendor: str = Field(default="simulated", max_length=64)
    rating_scale: int = Field(default=5, ge=2, le=10)
    budget_usd: float = Field(default=0.0, ge=0)
    deadline: datetime | None = _ts(nullable=True)
    status: CampaignStatus = Field(default=CampaignStatus.draft)
    model_family: str = Field(default="default", max_length=120)
    max_extra_rounds: int = Field(default=1, ge=0, le=10)
    extra_vendors: list[str] = _json(list)  # also eligible for extra rounds (service.domain.overlap)
    created_at: datetime = _now()
    reconcile_claimed_at: datetime | None = _ts(nullable=True)  # see service.domain.reconcile_lease


class Item(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("campaign_id", "external_id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True)
    external_id: str = Field(max_length=200)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    responses: list[dict[str, Any]] = _json(list)  # [{"model_id": ..., "text": ...}], 2..k
    gold: str | None = Field(default=None, max_length=200)  # canonical label when known
    meta: dict[str, Any] = _json(dict)
    created_at: datetime = _now()


class Batch(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True)
    vendor: str = Field(max_length=64)
    round: int = Field(default=0)  # 0 = first pass, >0 = extra judgments for contested items
    raters_per_item: int
    n_items: int
    status: BatchStatus = Field(default=BatchStatus.pending, index=True)
    idempotency_key: str = Field(unique=True, max_length=128)
    vendor_batch_id: str | None = Field(default=None, max_length=200)
    fetch_cursor: str | None = Field(default=None, max_length=500)
    expected_cost: float = 0.0
    auditable: bool = True  # False where the vendor gives one answer per task (no rater identity)
    judgments_expected: int = 0
    judgments_done: int = 0
    next_poll_at: datetime | None = _ts(nullable=True, index=True)
    created_at: datetime = _now()
    submitted_at: datetime | None = _ts(nullable=True)
    completed_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _now()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BatchItem(SQLModel, table=True):
    batch_id: uuid.UUID = Field(foreign_key="batch.id", primary_key=True)
    item_id: uuid.UUID = Field(foreign_key="item.id", primary_key=True, index=True)


class SubmissionAttempt(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="batch.id", index=True)
    action: str = Field(max_length=32)  # submit | poll | fetch | cancel
    task_id: str | None = Field(default=None, max_length=200)
    outcome: str = Field(default="started", max_length=32)  # started | ok | replayed | retryable | failed
    error_class: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = _now()
    finished_at: datetime | None = _ts(nullable=True)


class RedactionRecord(SQLModel, table=True):
    """What was redacted from one item's text before it went out in one batch (counts by kind and
    SHA-256 digests of the spans; never the spans themselves)."""

    batch_id: uuid.UUID = Field(foreign_key="batch.id", primary_key=True)
    item_id: uuid.UUID = Field(foreign_key="item.id", primary_key=True)
    counts: dict[str, int] = _json(dict)
    digests: list[str] = _json(list)
    created_at: datetime = _now()


class Judgment(SQLModel, table=True):
    """One single rater's answer. Unique on (vendor, vendor_judgment_id): a re-delivery is a no-op."""

    __table_args__ = (
        UniqueConstraint("vendor", "vendor_judgment_id", name="uq_judgment_vendor_id"),
        Index("ix_judgment_campaign_item", "campaign_id", "item_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id")
    item_id: uuid.UUID = Field(foreign_key="item.id")
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="batch.id", index=True)
    vendor: str = Field(max_length=64)
    vendor_judgment_id: str = Field(max_length=200)
    rater_id: str = Field(max_length=200, index=True)
    label: str = Field(max_length=200)
    started_at: datetime | None = _ts(nullable=True)
    submitted_at: datetime = _ts()
    received_at: datetime = _now()
    cost: float | None = None
    raw: dict[str, Any] = _json(dict)


class QuarantinedPayload(SQLModel, table=True):
    """A payload that could not be stored, kept whole with the reason. A re-delivery of the same
    payload (same vendor, batch, source and bytes) is stored once: ``fingerprint`` is unique."""

    __table_args__ = (UniqueConstraint("vendor", "fingerprint", name="uq_quarantine_vendor_fingerprint"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    vendor: str = Field(max_length=64, index=True)
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="batch.id", index=True)
    source: str = Field(default="poll", max_length=32)  # poll | webhook | file
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _now()
    fingerprint: str = Field(max_length=64)


class ConsensusLabel(SQLModel, table=True):
    """Derived: rewritten from the judgments by every reconciliation. No foreign keys (migration 0008): its
    item and campaign ids come from judgments, whose keys are checked, and the checks were ~45% of the
    server's cost of writing the 300k rows of a full reconciliation at 100k items."""

    __table_args__ = (UniqueConstraint("item_id", "method", name="uq_consensus_item_method"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(index=True)
    item_id: uuid.UUID
    method: str = Field(max_length=32)
    label: str = Field(max_length=200)
    confidence: float
    posterior: dict[str, float] = _json(dict)
    n_judgments: int = 0
    contested: bool = False
    computed_at: datetime = _now()


class AgreementReport(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True)
    scope: str = Field(max_length=32)  # campaign | vendor | batch | rater
    scope_key: str = Field(max_length=200)
    metric: str = Field(max_length=64)  # krippendorff_alpha | accuracy_vs_consensus | ...
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    details: dict[str, Any] = _json(dict)
    computed_at: datetime = _now()


class DatasetSnapshot(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True)
    content_hash: str = Field(max_length=64, index=True)
    path: str = Field(max_length=1000)
    n_pairs: int
    created_at: datetime = _now()


class SnapshotJudgment(SQLModel, table=True):
    snapshot_id: uuid.UUID = Field(foreign_key="datasetsnapshot.id", primary_key=True)
    judgment_id: uuid.UUID = Field(foreign_key="judgment.id", primary_key=True, index=True)


class RetrainJob(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id", index=True)
    model_family: str = Field(max_length=120, index=True)
    trigger: str = Field(max_length=32)  # policy | manual | schedule
    status: RetrainStatus = Field(default=RetrainStatus.queued, index=True)
    snapshot_id: uuid.UUID | None = Field(default=None, foreign_key="datasetsnapshot.id")
    model_version_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = _now()
    started_at: datetime | None = _ts(nullable=True)
    heartbeat_at: datetime | None = _ts(nullable=True)  # refreshed while it trains (service.domain.training_lease)
    finished_at: datetime | None = _ts(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ModelVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("family", "version", name="uq_model_family_version"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    family: str = Field(max_length=120, index=True)
    version: int
    campaign_id: uuid.UUID = Field(foreign_key="campaign.id")
    retrain_job_id: uuid.UUID = Field(foreign_key="retrainjob.id")
    snapshot_id: uuid.UUID = Field(foreign_key="datasetsnapshot.id")
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="modelversion.id")
    dataset_hash: str = Field(max_length=64)
    metrics: dict[str, Any] = _json(dict)
    config: dict[str, Any] = _json(dict)
    artifact_path: str = Field(max_length=1000)
    promoted: bool = False
    created_at: datetime = _now()


class OutboxMessage(SQLModel, table=True):
    """A task to publish, written in the same transaction as the state it acts on.

    The relay publishes committed rows and stamps ``published_at``. The relay is itself
    at-least-once, so every task it publishes is idempotent.
    """

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    task: str = Field(max_length=200)
    args: list[Any] = _json(list)
    queue: str = Field(default="default", max_length=64)
    created_at: datetime = _now()
    published_at: datetime | None = _ts(nullable=True, index=True)
