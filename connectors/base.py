"""The connector protocol: the one seam between crowdbridge and a labeling vendor.

A connector speaks one vendor's API and nothing else. It takes and returns the plain
frozen value types below, never ORM rows, and never imports ``service``. Vendor JSON
shapes stay private to each vendor module.

Canonical labels (what :attr:`VendorJudgment.label` holds), by judgment kind:

============  ==========================================================
pairwise      ``"A"`` (first response better), ``"B"``, or ``"tie"``
ranking       response letters best first, joined by ``>``: ``"C>A>B"``
rating        the Likert score as text: ``"4"``
binary        ``"up"`` or ``"down"``
============  ==========================================================
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

__all__ = [
    "BatchRequest",
    "BatchState",
    "Capabilities",
    "Connector",
    "JudgmentKind",
    "MalformedRecord",
    "ResultPage",
    "TaskSpec",
    "VendorBatchRef",
    "VendorBatchStatus",
    "VendorJudgment",
    "WebhookEvent",
    "WebhookReceiver",
    "response_letter",
    "valid_label",
]


class JudgmentKind(str, enum.Enum):
    pairwise = "pairwise"
    ranking = "ranking"
    rating = "rating"
    binary = "binary"


class BatchState(str, enum.Enum):
    """What the vendor says about a batch (never our own state machine)."""

    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"


def response_letter(index: int) -> str:
    """Response index -> canonical letter (0 -> "A")."""
    return string.ascii_uppercase[index]


def valid_label(kind: JudgmentKind, label: str, n_responses: int, scale: int = 5) -> bool:
    """True when ``label`` is a well-formed canonical label for this kind of item."""
    if kind is JudgmentKind.pairwise:
        return label in {"A", "B", "tie"}
    if kind is JudgmentKind.ranking:
        parts = label.split(">")
        return len(parts) == n_responses and set(parts) == {response_letter(i) for i in range(n_responses)}
    if kind is JudgmentKind.rating:
        return label.isdigit() and 1 <= int(label) <= scale
    return label in {"up", "down"}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One item as a vendor sees it: a prompt and 2..k responses."""

    item_id: str
    prompt: str
    responses: tuple[str, ...]
    gold: str | None = None  # canonical label when this is a gold (known-answer) item


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """A batch to submit. ``idempotency_key`` is stable across retries of the same batch."""

    batch_id: str
    idempotency_key: str
    campaign_id: str
    kind: JudgmentKind
    instructions: str
    raters_per_item: int
    tasks: tuple[TaskSpec, ...]
    rating_scale: int = 5
    reward_per_judgment: float = 0.0
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class VendorBatchRef:
    """Where a submitted batch lives at the vendor. ``created`` is False on an idempotent replay."""

    vendor: str
    vendor_batch_id: str
    created: bool = True


@dataclass(frozen=True, slots=True)
class VendorBatchStatus:
    state: BatchState
    tasks_total: int
    judgments_expected: int
    judgments_done: int


@dataclass(frozen=True, slots=True)
class VendorJudgment:
    """One single rater's answer on one item, in canonical form, with the vendor's raw record."""

    vendor_judgment_id: str
    item_id: str
    rater_id: str
    label: str
    submitted_at: datetime
    started_at: datetime | None = None
    cost: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A vendor record that could not be parsed. It is quarantined, never dropped."""

    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One page of results. Pass ``cursor`` back to get the next page; None means caught up."""

    judgments: tuple[VendorJudgment, ...]
    malformed: tuple[MalformedRecord, ...]
    cursor: str | None
    has_more: bool


@dataclass(frozen=True, slots=True)
class Capabilities:
    per_rater_identity: bool
    webhooks: bool
    idempotent_submit: bool
    cancel: bool
    cost: bool
    kinds: tuple[JudgmentKind, ...] = tuple(JudgmentKind)


@runtime_checkable
class Connector(Protocol):
    """Five verbs. Implementations map every transport/HTTP failure to ``connectors.errors``."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, transport: httpx.BaseTransport | None = None) -> Connector:
        """Build from the vendor's settings section (plain values; secrets already unwrapped).

        ``transport`` swaps the HTTP wire in tests; the connector builds its client with
        ``connectors.http.build_client`` and explicit timeouts.
        """
        ...

    def submit_batch(self, request: BatchRequest) -> VendorBatchRef:
        """Create the batch once. A retry with the same idempotency key must not create it twice."""
        ...

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        """The vendor's status and counts; no results."""
        ...

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        """Results after ``cursor`` (None = from the start), one page at a time."""
        ...

    def cancel(self, ref: VendorBatchRef) -> None:
        """Stop the batch. Cancelling twice, or a finished batch, is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A vendor's callback, verified. It is a hint to poll ``vendor_batch_id`` soon, never a result.

    ``vendor_batch_id`` may be None when the payload names only a task (the domain then maps
    ``vendor_task_id`` back to a batch, or polls every open batch of that vendor). ``event_id`` is the
    vendor's delivery id where it sends one, for de-duplicating re-deliveries.
    """

    vendor: str
    kind: str
    vendor_batch_id: str | None = None
    vendor_task_id: str | None = None
    event_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class WebhookReceiver(Protocol):
    """Optional sixth verb, for connectors whose vendor calls back (Scale, Toloka, Argilla, ...).

    ``parse_webhook`` verifies the delivery the vendor's way (constant time; timestamp tolerance
    where the vendor signs one) and raises ``connectors.errors.WebhookRejected`` when it does not
    verify. A webhook never replaces polling: the domain answers an event by polling the batch.
    """

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        ...
