"""One real run on a fresh PostgreSQL database, shared by the API tests of this package, plus a
TestClient and a token per scope. Tests that write create their own uniquely named campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.domain.tokens import create_token
from service.storage.db import migrate, session_scope
from tests.service.run import TURNAROUND_S, Run, produce_run, run_settings
from tests.support import Vendor, fresh_postgres, postgres_available, running_vendor


@dataclass
class World:
    run: Run
    vendor: Vendor
    client: TestClient
    tokens: dict[str, str]  # scope -> plain token

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not postgres_available():
        pytest.skip("needs PostgreSQL on 127.0.0.1 (.ci/run starts it)")
    tmp = tmp_path_factory.mktemp("api")
    with fresh_postgres() as url, running_vendor(tmp, f"--turnaround={TURNAROUND_S}") as vendor:
        settings = run_settings(Path(tmp), url, vendor.url)
        migrate(url)
        run = produce_run(settings, n_items=60, raters=3, models=1)
        with session_scope(url) as s:
            tokens = {scope: create_token(s, name=f"test-{scope}", scope=scope).plain
                      for scope in ("admin", "operator", "auditor")}
            s.commit()
        with TestClient(create_app(settings)) as client:
            yield World(run=run, vendor=vendor, client=client, tokens=tokens)
