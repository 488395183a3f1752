"""Appen (Figure Eight / CrowdFlower) API v1: one job per batch, one unit per item, per-rater judgments.

Wire (``https://api.appen.com/v1``, the v1 jobs-units-judgments API): ``Authorization: Token token=<key>``
(the older ``?key=`` query form is accepted by the vendor too, but puts the key in URLs and logs).

* submit: the job's title is ``crowdbridge <idempotency key>``. Appen has no idempotency key, so a
  submit first looks the job up (``GET /jobs.json?page=``, 10 per page, an empty page ends) and the
  units already in it (``GET /jobs/{id}/units.json?page=`` -> ``{unit_id: data}``, an empty object
  ends), then ``POST /jobs/{id}/upload.json`` (JSON lines) with only the missing items, then orders
  the work (``POST /jobs/{id}/orders.json`` with ``debit.units_count``) unless already running.
  ``judgments_per_unit`` = raters; ``units_per_assignment`` = 1; ``payment_cents`` per assignment.
* poll: ``GET /jobs/{id}.json`` (``state`` unordered | running | paused | canceled | finished) and
  ``GET /jobs/{id}/ping.json`` (``all_units``, ``all_judgments``, ``needed_judgments``).
* fetch: units in id order, each ``GET /jobs/{id}/units/{unit}.json`` whose ``results.judgments[]`` are
  single rater answers ``{id, worker_id, started_at, created_at, data: {<field>: value}, tainted, ...}``;
  a frontier cursor skips finalized units (:mod:`connectors._paging`). Tainted (failed quality)
  judgments are quarantined with that reason rather than stored as answers.
* webhooks: ``job.webhook_uri``; the vendor POSTs a form ``signal`` (``unit_complete``,
  ``job_complete``, ``new_judgments``), ``payload`` (JSON) and ``signature`` = hex SHA-1 of
  ``payload + api_key``; verified here in constant time (as recalled from the CrowdFlower API docs; not
  checked against the live service here).
* cancel: ``GET /jobs/{id}/cancel.json`` (the v1 API's verb for pause/resume/cancel), skipped when the
  job is already canceled or finished.
* cost: ``payment_cents / units_per_assignment`` per judgment, in USD.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx

from connectors._paging import Frontier
from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    JudgmentKind,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    WebhookEvent,
    response_letter,
)
from connectors.errors import WebhookRejected
from connectors.http import build_client, request
from connectors.mapping import dig, malformed, parse_time
from connectors.webhooks import _equal

__all__ = ["AppenConnector", "cml_for", "sign_appen", "verify_appen"]

FIELD = "preference"


def cml_for(kind: JudgmentKind, n_responses: int, scale: int = 5) -> str:
    """The job's CML form: one required field ``preference`` whose values are canonical labels."""
    if kind is JudgmentKind.ranking:
        letters = ">".join(response_letter(i) for i in range(n_responses))
        return (f'<cml:text label="Rank the responses best first, e.g. {letters}" name="{FIELD}" '
                f'validates="required"/>')
    options = {JudgmentKind.pairwise: [("Response A", "A"), ("Response B", "B"), ("Tie", "tie")],
               JudgmentKind.rating: [(str(i), str(i)) for i in range(1, scale + 1)],
               JudgmentKind.binary: [("Good", "up"), ("Bad", "down")]}[kind]
    radios = "".join(f'<cml:radio label="{label}" value="{value}"/>' for label, value in options)
    return f'<cml:radios label="Which response is better?" name="{FIELD}" validates="required">{radios}</cml:radios>'


def sign_appen(payload: str, api_key: str) -> str:
    return hashlib.sha1((payload + api_key).encode()).hexdigest()


def verify_appen(form: Mapping[str, str], api_key: str) -> None:
    if not api_key:
        raise WebhookRejected("appen webhook rejected: no secret configured", vendor="appen")
    payload, signature = form.get("payload"), form.get("signature")
    if payload is None or not signature or not _equal(signature.lower(), sign_appen(payload, api_key)):
        raise WebhookRejected("appen webhook rejected: missing or wrong signature", vendor="appen")


class AppenConnector:
    name: ClassVar[str] = "appen"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=True, idempotent_submit=False, cancel=True, cost=True)

    def __init__(self, client: httpx.Client, *, api_key: str, webhook_uri: str | None = None,
                 units_per_fetch: int = 25) -> None:
        self._client = client
        self._key = api_key
        self._webhook_uri = webhook_uri
        self._per_fetch = units_per_fetch

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> AppenConnector:
        key = str(options.get("api_key") or "")
        client = build_client(options.get("base_url") or "https://api.appen.com/v1",
                              headers={"Authorization": f"Token token={key}"},
                              timeout=float(options.get("timeout_s", 30.0)), transport=transport)
        return cls(client, api_key=key, webhook_uri=options.get("callback_url"),
                   units_per_fetch=int(options.get("units_per_fetch", 25)))

    def _call(self, method: str, url: str, batch_id: str | None = None, **kwargs: Any) -> httpx.Response:
        return request(self._client, method, url, vendor=self.name, batch_id=batch_id, **kwargs)

    def _find_job(self, title: str) -> dict[str, Any] | None:
        for page in range(1, 10_000):
            jobs = self._call("GET", "/jobs.json", params={"page": page}).json()
            for job in jobs:
                if job.get("title") == title:
                    return job
            if not jobs:
                return None
        return None

    def _units(self, job_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for page in range(1, 10_000):
            rows = self._call("GET", f"/jobs/{job_id}/units.json", params={"page": page}).json()
            if not rows:
                break
            out.update(rows)
        return out

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        title = f"crowdbridge {req.idempotency_key}"
        job = self._find_job(title)
        created = job is None
        if job is None:
            n = max(len(t.responses) for t in req.tasks)
            body = {"job": {"title": title, "instructions": req.instructions or "Pick the better response.",
                            "cml": cml_for(req.kind, n, req.rating_scale), "judgments_per_unit": req.raters_per_item,
                            "units_per_assignment": 1, "max_judgments_per_worker": len(req.tasks),
                            "payment_cents": round(req.reward_per_judgment * 100),
                            "webhook_uri": req.callback_url or self._webhook_uri,
                            "tags": ["crowdbridge", req.kind.value]}}
            job = self._call("POST", "/jobs.json", req.batch_id, json=body).json()
        job_id = str(job["id"])
        have = {str(d.get("crowdbridge_item_id")) for d in self._units(job_id).values()}
        lines = [json.dumps({"crowdbridge_item_id": t.item_id, "prompt": t.prompt,
                             **{f"response_{response_letter(i).lower()}": r for i, r in enumerate(t.responses)}})
                 for t in req.tasks if t.item_id not in have]
        if lines:
            self._call("POST", f"/jobs/{job_id}/upload.json", req.batch_id, content="\n".join(lines).encode(),
                       headers={"Content-Type": "application/json"}, params={"force": "true"})
        if self._call("GET", f"/jobs/{job_id}.json", req.batch_id).json().get("state") == "unordered":
            self._call("POST", f"/jobs/{job_id}/orders.json", req.batch_id,
                       json={"channels": ["on_demand"], "debit": {"units_count": len(req.tasks)}})
        return VendorBatchRef(vendor=self.name, vendor_batch_id=job_id, created=created)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        job = self._call("GET", f"/jobs/{ref.vendor_batch_id}.json").json()
        ping = self._call("GET", f"/jobs/{ref.vendor_batch_id}/ping.json").json()
        states = {"unordered": BatchState.pending, "running": BatchState.in_progress, "paused": BatchState.in_progress,
                  "canceled": BatchState.cancelled, "finished": BatchState.completed}
        units = int(ping.get("all_units") or 0)
        done = int(ping.get("all_judgments") or 0)
        return VendorBatchStatus(state=states.get(str(job.get("state")), BatchState.in_progress), tasks_total=units,
                                 judgments_expected=done + int(ping.get("needed_judgments") or 0),
                                 judgments_done=done)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        job = self._call("GET", f"/jobs/{ref.vendor_batch_id}.json").json()
        unit_ids = sorted(self._units(ref.vendor_batch_id), key=lambda u: (len(u), u))
        state = Frontier.load(cursor)
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        per_assignment = max(1, int(job.get("units_per_assignment") or 1))
        cost = float(job["payment_cents"]) / 100 / per_assignment if job.get("payment_cents") is not None else None
        stop = min(len(unit_ids), state.position + self._per_fetch)
        for index in range(state.position, stop):
            unit = self._call("GET", f"/jobs/{ref.vendor_batch_id}/units/{unit_ids[index]}.json").json()
            rows = (dig(unit, "results", "judgments")) or []
            for row in rows:
                parsed = self.parse_judgment(unit, row, cost)
                (judgments if isinstance(parsed, VendorJudgment) else bad).append(parsed)  # type: ignore[arg-type]
            state.item_done(index, unit.get("state") in ("finalized", "canceled"))
        more = stop < len(unit_ids)
        if not more:
            state.restart()
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=state.dump(), has_more=more)

    @staticmethod
    def parse_judgment(unit: Mapping[str, Any], row: Any, cost: float | None) -> VendorJudgment | MalformedRecord:
        raw = {"unit_id": unit.get("id"), "unit_data": unit.get("data"), "judgment": row}
        if not isinstance(row, dict) or not row.get("id") or not row.get("worker_id"):
            return malformed(raw, "judgment has no id or no worker_id")
        if row.get("tainted"):
            return malformed(raw, "judgment is tainted (the worker failed Appen's quality checks)")
        item_id = dig(unit, "data", "crowdbridge_item_id")
        value = dig(row, "data", FIELD)
        if not item_id or not isinstance(value, str) or not value:
            return malformed(raw, f"judgment has no {FIELD!r} answer or its unit no crowdbridge_item_id")
        try:
            submitted = parse_time(row.get("created_at"))
            started = parse_time(row["started_at"]) if row.get("started_at") else None
        except ValueError:
            return malformed(raw, f"created_at {row.get('created_at')!r} is not a time")
        return VendorJudgment(vendor_judgment_id=f"appen:{row['id']}", item_id=str(item_id),
                              rater_id=f"appen:{row['worker_id']}", label=value.strip(), submitted_at=submitted,
                              started_at=started, cost=cost, raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        job = self._call("GET", f"/jobs/{ref.vendor_batch_id}.json").json()
        if job.get("state") in ("canceled", "finished"):
            return
        self._call("GET", f"/jobs/{ref.vendor_batch_id}/cancel.json")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()}
        verify_appen(form, self._key)
        try:
            payload = json.loads(form["payload"])
        except (KeyError, ValueError) as exc:
            raise WebhookRejected("appen webhook rejected: unreadable payload", vendor=self.name) from exc
        payload = payload if isinstance(payload, dict) else {}
        job_id = payload.get("job_id")
        return [WebhookEvent(vendor=self.name, kind=str(form.get("signal")),
                             vendor_batch_id=str(job_id) if job_id is not None else None,
                             vendor_task_id=str(payload["id"]) if payload.get("id") is not None else None,
                             raw=payload)]
