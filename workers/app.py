"""The Celery app, configured from ``Settings``. Every reliability setting says why it is set.

Run: ``crowdbridge worker`` (or ``celery -A workers.app worker -Q default,reconcile,training``).
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu import Queue

from service.domain import outbox
from service.settings import Settings, get_settings

__all__ = ["app", "configure"]

app = Celery("crowdbridge", include=["workers.tasks"])
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per vendor request is noise at INFO


def configure(celery: Celery, settings: Settings) -> Celery:
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat's schedule file lives there
    celery.conf.update(
        broker_url=settings.resolved_broker_url,
        # results live in SQL (batch status, retrain jobs), never in a result backend
        task_ignore_result=True,
        result_backend=None,
        # a task is acked only after it ran: a worker that dies mid-task leaves it to be redelivered...
        task_acks_late=True,
        # ...also when only its pool child was SIGKILLed (acks_late alone acks on WorkerLostError)
        task_reject_on_worker_lost=True,
        # one message at a time per process, so a crash strands at most the one running task
        worker_prefetch_multiplier=1,
        broker_transport_options={
            # must exceed the longest task and any countdown, or Redis redelivers it while it still
            # runs (kombu#337); long waits are scheduled from the database, not as countdowns
            "visibility_timeout": settings.visibility_timeout_s,
            # sweep unacked messages of dead workers every ~10 s instead of kombu's ~100 s cadence
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 2,
        },
        broker_connection_retry_on_startup=True,
        # recycle children against slow leaks (celery#4843)
        worker_max_tasks_per_child=500,
        # vendor calls have their own HTTP timeouts; these bound everything else (a reconciliation of a
        # large campaign is the longest default-queue task) and stay below the visibility timeout
        task_soft_time_limit=settings.visibility_timeout_s - 30,
        task_time_limit=settings.visibility_timeout_s - 10,
        task_default_queue="default",
        task_queues=tuple(Queue(name) for name in outbox.KNOWN_QUEUES),
        # training runs on its own queue so GPU machines can consume only that one; reconciliation on its
        # own so it never waits behind a beat tick's fan-out of polls (the outbox publishes on the same queues)
        task_routes={task: {"queue": queue} for task, queue in outbox.QUEUES.items()},
        worker_hijack_root_logger=False,
        beat_schedule={
            "poll-open-batches": {"task": "workers.vendor.poll_open_batches", "schedule": settings.poll_interval_s},
            "relay-outbox": {"task": "workers.outbox.relay", "schedule": 1.0},
            "sweep-stuck-work": {"task": "workers.outbox.sweep", "schedule": 10.0},
            **({"retrain-schedule": {"task": "workers.training.apply_schedule", "schedule": 60.0,
                                     "options": {"queue": "default"}}} if settings.retrain_schedule_s else {}),
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        task_serializer="json",
        accept_content=["json"],
    )
    return celery


configure(app, get_settings())
