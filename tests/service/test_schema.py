"""Schemathesis over the OpenAPI schema (admin token, the real run's database): no 5xx, ever."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (test extra)")
from hypothesis import HealthCheck, settings  # noqa: E402

from tests.service.conftest import World  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def api_schema(world: World):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", world.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case, world: World) -> None:  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), **world.auth("admin")}
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) >= {"code", "message"}, body
