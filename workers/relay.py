"""The outbox relay: publishes committed outbox rows, then stamps them published.

At least once: a crash between publish and stamp republishes, and every task is idempotent.
"""

from __future__ import annotations

from service.domain import outbox
from service.settings import get_settings
from service.storage.db import session_scope

__all__ = ["relay_outbox"]


def relay_outbox(limit: int = 500) -> int:
    from workers.app import app

    with session_scope(get_settings().resolved_database_url) as session:
        messages = outbox.claim_unpublished(session, limit=limit)
        if not messages:
            return 0
        with app.producer_or_acquire() as producer:
            for message in messages:
                app.send_task(message.task, args=message.args, queue=message.queue, producer=producer)
        outbox.mark_published(session, messages)
        session.commit()
    return len(messages)
