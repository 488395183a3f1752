"""Vendor callbacks: store the event, then poll the batch it names. A webhook never carries results.

Connectors that implement ``parse_webhook(headers, body) -> list[connectors.base.WebhookEvent]``
(the optional ``WebhookReceiver`` verb) verify the delivery their vendor's way and raise
``WebhookRejected`` when it does not verify: nothing is stored or done. For vendors that do
not sign, an event is only a hint: it is stored unverified and makes the named batch due for
its next ordinary poll. That is safe to expose: a forged hint can at most bring a poll
forward, and ``sync_batch`` still honours the vendor's own rate limits (``next_poll_at``).

Replays: a verified delivery is stored with a ``delivery_key`` (the vendor's delivery id, else the body's
SHA-256), unique per vendor; the same delivery again is answered ``outcome="replay"`` and does nothing.
The connectors refuse timestamps outside their tolerance, so old captures are refused before that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from service.domain import outbox
from service.domain.vendors import connector_for
from service.settings import Settings
from service.storage.models import Batch, BatchItem, BatchStatus
from service.storage.models_api import WebhookEvent
from service.storage.types import utcnow

__all__ = ["MAX_WEBHOOK_BYTES", "delivery_key", "receive_webhook"]

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1 << 20
_DROP_HEADERS = {"authorization", "cookie", "proxy-authorization"}
_OUR_KEYS = ("external_id", "idempotency_key", "batch_external_id")
_VENDOR_KEYS = ("vendor_batch_id", "batch_id", "job_id", "project_id", "id")


def _hint_ids(body: bytes) -> tuple[list[str], list[str]]:
    """(our idempotency keys, vendor batch ids) named anywhere in the top level or one level down."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [], []
    objects = [data] if isinstance(data, dict) else []
    objects += [v for o in list(objects) for v in o.values() if isinstance(v, dict)]
    ours = [str(o[k]) for o in objects for k in _OUR_KEYS if isinstance(o.get(k), str | int)]
    theirs = [str(o[k]) for o in objects for k in _VENDOR_KEYS if isinstance(o.get(k), str | int)]
    return ours, theirs


def _open_batches(session: Session, vendor: str, *, keys: Iterable[str] = (), vendor_ids: Iterable[str] = (),
                  task_ids: Iterable[str] = (), every_open: bool = False) -> list[Batch]:
    query = select(Batch).where(Batch.vendor == vendor).where(Batch.status == BatchStatus.submitted)
    keys, vendor_ids, items = list(keys), list(vendor_ids), []
    for t in task_ids:
        try:
            items.append(uuid.UUID(t))
        except ValueError:
            pass
    if every_open:
        return list(session.exec(query))
    found: dict[uuid.UUID, Batch] = {}
    if keys:
        found.update({b.id: b for b in session.exec(query.where(col(Batch.idempotency_key).in_(keys)))})
    if vendor_ids:
        found.update({b.id: b for b in session.exec(query.where(col(Batch.vendor_batch_id).in_(vendor_ids)))})
    if items:
        found.update({b.id: b for b in session.exec(
            query.join(BatchItem, col(BatchItem.batch_id) == Batch.id).where(col(BatchItem.item_id).in_(items)))})
    return list(found.values())


def receive_webhook(session: Session, settings: Settings, vendor: str, headers: Mapping[str, str],
                    body: bytes) -> WebhookEvent:
    """Verify (where the connector can), store, and make the named batches due for a poll.

    Raises ``UnknownVendor`` for a vendor nobody registered and ``WebhookRejected`` for a
    delivery that does not verify. Commits.
    """
    connector = connector_for(settings, vendor)
    parse = getattr(connector, "parse_webhook", None)
    key: str | None = None
    if callable(parse):
        events = parse(headers, body)  # raises WebhookRejected when it does not verify
        verified: bool | None = True
        key = delivery_key(events, body)
        if _seen(session, vendor, key):
            return _replay(vendor, key)
        batches = _open_batches(session, vendor, vendor_ids=[e.vendor_batch_id for e in events if e.vendor_batch_id],
                                task_ids=[e.vendor_task_id for e in events if e.vendor_task_id])
        if not batches and any(e.vendor_batch_id is None and e.vendor_task_id is None for e in events):
            batches = _open_batches(session, vendor, every_open=True)
    else:
        verified = None
        ours, theirs = _hint_ids(body)
        batches = _open_batches(session, vendor, keys=ours, vendor_ids=theirs)
    now = utcnow()
    for batch in batches:
        batch.next_poll_at = now
        session.add(batch)
        outbox.enqueue(session, outbox.POLL_BATCH, batch.id)
    event = WebhookEvent(vendor=vendor, verified=verified, body=body.decode("utf-8", errors="replace"),
                         headers={k: v for k, v in headers.items() if k.lower() not in _DROP_HEADERS},
                         batch_id=batches[0].id if len(batches) == 1 else None, delivery_key=key,
                         outcome=f"poll_requested:{len(batches)}" if batches else "no_batch")
    session.add(event)
    try:
        session.commit()
    except IntegrityError:  # the same delivery, verified concurrently by another request: it acted already
        session.rollback()
        return _replay(vendor, key)
    return event


def delivery_key(events: list[Any], body: bytes) -> str:
    """The vendor's delivery id where it sends one (the first event's), else the body's SHA-256: a signed
    message arriving again (an attacker's replay inside the timestamp tolerance, or the vendor's retry) has
    the same key."""
    ids = [e.event_id for e in events if getattr(e, "event_id", None)]
    return f"id:{ids[0]}"[:200] if ids else f"sha256:{hashlib.sha256(body).hexdigest()}"


def _seen(session: Session, vendor: str, key: str) -> bool:
    return session.exec(select(WebhookEvent.id).where(WebhookEvent.vendor == vendor)
                        .where(WebhookEvent.delivery_key == key)).first() is not None


def _replay(vendor: str, key: str | None) -> WebhookEvent:
    """Not stored (the first delivery is) and nothing done: answered 2xx so the vendor stops retrying."""
    log.info("webhook from %s: delivery %s already received; ignored", vendor, key)
    return WebhookEvent(vendor=vendor, verified=True, body="", outcome="replay", delivery_key=key)
