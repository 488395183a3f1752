"""The Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL, and the newest
one downgrades and upgrades again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from service.storage import models  # noqa: F401  (registers every table on SQLModel.metadata)
from service.storage.db import alembic_config, migrate
from tests.support import fresh_postgres, postgres_available


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'schema.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (CROWDBRIDGE_TEST_PG)")
    with fresh_postgres() as url:
        yield url


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrations_build_the_models_schema(database_url: str) -> None:
    migrate(database_url)
    assert _differences(database_url) == []


def test_the_newest_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    migrate(database_url)
    config = alembic_config(database_url)
    command.downgrade(config, "-1")
    assert _differences(database_url) != []  # the previous schema differs from the models
    command.upgrade(config, "head")
    assert _differences(database_url) == []
