"""The ``simulated`` connector: speaks the simulated vendor's HTTP API (see ``server.py``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx
import orjson

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
)
from connectors.errors import VendorRejected
from connectors.http import build_client, request

__all__ = ["SimulatedConnector", "parse_judgment"]

LABEL_SHAPES = ("A", "B", "tie", "up", "down")


def _label_ok(label: object) -> bool:
    if not isinstance(label, str) or not label:
        return False
    if label in LABEL_SHAPES or label.isdigit():
        return True
    parts = label.split(">")
    return len(parts) >= 2 and all(len(p) == 1 and p.isalpha() and p.isupper() for p in parts)


def _when(value: object, field: str) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{field} is not a unix timestamp: {value!r}")
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def _text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)


def parse_judgment(raw: Any) -> VendorJudgment | MalformedRecord:
    """One vendor record -> a judgment, or a quarantinable record that says what was wrong.

    The record's text is rebuilt only for a malformed one (it was 16% of a poll's CPU when it was
    built for every record)."""
    if not isinstance(raw, dict):
        return MalformedRecord(raw=_text(raw), reason=f"record is not a JSON object ({type(raw).__name__})")
    for field in ("id", "task_id", "worker_id"):
        if not isinstance(raw.get(field), str) or not raw[field]:
            return MalformedRecord(raw=_text(raw), reason=f"missing or empty {field!r}")
    if not _label_ok(raw.get("answer")):
        return MalformedRecord(raw=_text(raw), reason=f"answer {raw.get('answer')!r} is not a valid label")
    try:
        submitted = _when(raw.get("submitted_at"), "submitted_at")
        started = _when(raw["started_at"], "started_at") if raw.get("started_at") is not None else None
    except ValueError as exc:
        return MalformedRecord(raw=_text(raw), reason=str(exc))
    cost = raw.get("cost_usd")
    return VendorJudgment(vendor_judgment_id=raw["id"], item_id=raw["task_id"], rater_id=raw["worker_id"],
                          label=raw["answer"], submitted_at=submitted, started_at=started,
                          cost=float(cost) if isinstance(cost, int | float) else None, raw=raw)


def _loads(response: httpx.Response) -> Any:
    """orjson (3x the stdlib here); the stdlib for what orjson refuses but it reads (NaN, huge ints)."""
    try:
        return orjson.loads(response.content)
    except ValueError:
        return json.loads(response.text)


class SimulatedConnector:
    name: ClassVar[str] = "simulated"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=False, idempotent_submit=True, cancel=True, cost=True)

    def __init__(self, client: httpx.Client, *, page_size: int = 500) -> None:
        self._client = client
        self._page_size = page_size

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> SimulatedConnector:
        base_url = options.get("base_url") or "http://127.0.0.1:8765"
        client = build_client(base_url, headers={"Authorization": f"Bearer {options.get('api_key', '')}"},
                              timeout=float(options.get("timeout_s", 10.0)), transport=transport)
        return cls(client, page_size=int(options.get("page_size", 500)))

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        body = {
            "external_id": req.idempotency_key, "kind": req.kind.value, "raters_per_item": req.raters_per_item,
            "rating_scale": req.rating_scale, "reward_per_judgment": req.reward_per_judgment,
            "instructions": req.instructions,
            "tasks": [{"id": t.item_id, "prompt": t.prompt, "responses": list(t.responses)} for t in req.tasks],
        }
        response = request(self._client, "POST", "/v1/batches", vendor=self.name, batch_id=req.batch_id, json=body)
        data = response.json()
        return VendorBatchRef(vendor=self.name, vendor_batch_id=data["id"], created=not data.get("replayed"))

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        data = request(self._client, "GET", f"/v1/batches/{ref.vendor_batch_id}", vendor=self.name).json()
        try:
            state = BatchState(data["state"])
            return VendorBatchStatus(state=state, tasks_total=int(data["tasks_total"]),
                                     judgments_expected=int(data["judgments_expected"]),
                                     judgments_done=int(data["judgments_done"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise VendorRejected(f"simulated: unreadable batch status: {str(data)[:200]}", vendor=self.name) from exc

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        params = {"cursor": int(cursor or 0), "limit": self._page_size}
        response = request(self._client, "GET", f"/v1/batches/{ref.vendor_batch_id}/judgments",
                           vendor=self.name, params=params)
        try:
            envelope = _loads(response)
            records, next_cursor = list(envelope["judgments"]), str(envelope["next_cursor"])
            has_more = bool(envelope["has_more"])
        except (ValueError, KeyError, TypeError) as exc:
            # the page itself is unreadable: keep it whole, stay at this cursor, try again next poll
            bad = MalformedRecord(raw=response.text, reason=f"result page is not valid JSON: {exc}")
            return ResultPage(judgments=(), malformed=(bad,), cursor=cursor, has_more=False)
        judgments: list[VendorJudgment] = []
        malformed: list[MalformedRecord] = []
        for record in records:
            parsed = parse_judgment(record)
            if isinstance(parsed, VendorJudgment):
                judgments.append(parsed)
            else:
                malformed.append(parsed)
        return ResultPage(judgments=tuple(judgments), malformed=tuple(malformed), cursor=next_cursor,
                          has_more=has_more)

    def cancel(self, ref: VendorBatchRef) -> None:
        request(self._client, "POST", f"/v1/batches/{ref.vendor_batch_id}/cancel", vendor=self.name)

