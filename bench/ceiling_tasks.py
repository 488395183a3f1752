"""The bare ceiling for bench.pipeline: a no-op batched Celery task doing one bulk SQL insert."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, MetaData, String, Table, insert

from service.settings import get_settings
from service.storage.db import get_engine
from workers.app import app

metadata = MetaData()
ceiling_rows = Table("bench_ceiling_rows", metadata, Column("id", String(36), primary_key=True),
                     Column("batch", String(64), nullable=False), Column("payload", String(64), nullable=False))


@app.task(name="bench.ceiling.insert_batch")
def insert_batch(batch: str, n: int) -> int:
    engine = get_engine(get_settings().resolved_database_url)
    rows = [{"id": str(uuid.uuid4()), "batch": batch, "payload": f"judgment {i}"} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(ceiling_rows), rows)
    return n
