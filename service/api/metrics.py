"""Prometheus metrics, read from the database at scrape time (so every API replica reports the same).

=====================================  ======================================================
crowdbridge_outbox_pending             tasks recorded but not yet published to the broker
crowdbridge_queue_depth{queue}         messages waiting in the broker (Redis brokers only)
crowdbridge_batches{state}             batches by state
crowdbridge_judgments_ingested_total   judgments stored, per vendor
crowdbridge_quarantined_total          vendor records quarantined, per vendor
crowdbridge_vendor_errors_total        failed vendor calls, per vendor and error class
crowdbridge_turnaround_seconds         histogram of turnaround per vendor, judgments of the last 24 h
crowdbridge_sla_breach                 1 per (vendor, metric) breaching its SLA over the last 24 h
=====================================  ======================================================

A scrape costs a few grouped queries; results are cached for ``ttl_s`` seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func
from sqlmodel import col, select

from service.domain import analytics
from service.settings import Settings
from service.storage.db import session_scope
from service.storage.models import Batch, BatchStatus, Judgment, OutboxMessage, QuarantinedPayload
from service.storage.models import SubmissionAttempt

__all__ = ["BUCKETS", "DatabaseCollector", "build_registry"]

BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400)
QUEUES = ("default", "training")


def _queue_depths(settings: Settings) -> dict[str, int]:
    import redis

    url = settings.resolved_broker_url
    with contextlib.suppress(Exception):
        if url.startswith("redis+socket://"):
            client = redis.Redis(unix_socket_path=url[len("redis+socket://"):], socket_timeout=0.5)
        elif url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        else:
            return {}
        return {q: int(client.llen(q)) for q in QUEUES}
    return {}


class DatabaseCollector(Collector):
    def __init__(self, settings: Settings, ttl_s: float = 5.0) -> None:
        self.settings = settings
        self.ttl_s = ttl_s
        self._cache: tuple[float, list[Any]] | None = None

    def describe(self) -> list[Any]:
        return []  # unchecked collector: families are computed at scrape time

    def collect(self) -> Iterator[Any]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > self.ttl_s:
            self._cache = (now, self._families())
        yield from self._cache[1]

    def _families(self) -> list[Any]:
        families: list[Any] = []
        with session_scope(self.settings.resolved_database_url) as s:
            pending = s.exec(select(func.count()).select_from(OutboxMessage)
                             .where(col(OutboxMessage.published_at).is_(None))).one()
            families.append(GaugeMetricFamily("crowdbridge_outbox_pending", "tasks recorded, not yet published",
                                              value=pending))
            depth = GaugeMetricFamily("crowdbridge_queue_depth", "messages waiting in the broker", labels=["queue"])
            for queue, n in _queue_depths(self.settings).items():
                depth.add_metric([queue], n)
            families.append(depth)
            states = dict(s.exec(select(Batch.status, func.count()).group_by(Batch.status)).all())
            batches = GaugeMetricFamily("crowdbridge_batches", "batches by state", labels=["state"])
            for state in BatchStatus:
                batches.add_metric([state.value], states.get(state, 0))
            families.append(batches)
            ingested = CounterMetricFamily("crowdbridge_judgments_ingested", "judgments stored", labels=["vendor"])
            for vendor, n in s.exec(select(Judgment.vendor, func.count()).group_by(Judgment.vendor)).all():
                ingested.add_metric([vendor], n)
            families.append(ingested)
            quarantined = CounterMetricFamily("crowdbridge_quarantined", "vendor records quarantined",
                                              labels=["vendor"])
            for vendor, n in s.exec(select(QuarantinedPayload.vendor, func.count())
                                    .group_by(QuarantinedPayload.vendor)).all():
                quarantined.add_metric([vendor], n)
            families.append(quarantined)
            errors = CounterMetricFamily("crowdbridge_vendor_errors", "failed vendor calls",
                                         labels=["vendor", "error_class"])
            for vendor, cls, n in s.exec(select(Batch.vendor, SubmissionAttempt.error_class, func.count())
                                         .join(Batch, col(Batch.id) == SubmissionAttempt.batch_id)
                                         .where(col(SubmissionAttempt.error_class).is_not(None))
                                         .group_by(Batch.vendor, SubmissionAttempt.error_class)).all():
                errors.add_metric([vendor, str(cls)], n)
            families.append(errors)
            since, until = analytics.recent_window(24)
            frame = analytics.judgment_frame(s, since=since)
            histogram = HistogramMetricFamily("crowdbridge_turnaround_seconds",
                                              "vendor turnaround (batch submitted -> judgment returned), last 24 h",
                                              labels=["vendor"])
            for vendor, part in frame.groupby("vendor"):
                values = part["turnaround_s"].dropna().to_numpy()
                counts = [(str(float(b)), int((values <= b).sum())) for b in BUCKETS]
                histogram.add_metric([str(vendor)], counts + [("+Inf", len(values))], sum_value=float(np.sum(values)))
            families.append(histogram)
            breach = GaugeMetricFamily("crowdbridge_sla_breach", "1 when a vendor breaches an SLA threshold (24 h)",
                                       labels=["vendor", "metric"])
            rows = analytics.vendor_analytics(s, since=since, until=until)
            for row in rows:
                for alert in row.alerts:
                    breach.add_metric([alert.vendor, alert.metric], 1)
            families.append(breach)
        return families


def build_registry(settings: Settings) -> CollectorRegistry:
    """A registry per app (not the process-global one), so several apps can live in one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(settings))
    return registry
