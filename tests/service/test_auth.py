"""Every route's authentication and authorisation: 401 without or with a bad token, 403 below its scope."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from service.api import create_app
from tests.service.conftest import World

pytestmark = pytest.mark.integration

PUBLIC = {("GET", "/healthz"), ("GET", "/dashboard/login"), ("POST", "/dashboard/login"), ("GET", "/dashboard/logout"),
          ("POST", "/webhooks/{vendor}")}  # webhooks authenticate by the vendor's signature (test_api)
RANK = {"auditor": 1, "operator": 2, "admin": 3}


def _required_scope(route: APIRoute) -> str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            return name.removeprefix("require_")
        stack.extend(dep.dependencies)
    return None


def _walk(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x includes routers lazily
            yield from _walk(route.original_router.routes)


def _routes() -> list[tuple[str, str, str | None]]:
    out = []
    for route in _walk(create_app().routes):
        if True:
            for method in sorted(route.methods - {"HEAD"}):
                out.append((method, route.path, _required_scope(route)))
    return out


ROUTES = _routes()


def _url(path: str, world: World) -> str:
    return (path.replace("{ref}", world.run.name).replace("{vendor}", "simulated")
            .replace("{model_id}", str(uuid.uuid4())).replace("{token_id}", str(uuid.uuid4())))


def test_every_route_is_either_public_or_scoped() -> None:
    unscoped = {(m, p) for m, p, scope in ROUTES if scope is None}
    assert unscoped == PUBLIC
    assert len(ROUTES) > 30


@pytest.mark.parametrize(("method", "path", "scope"), [r for r in ROUTES if r[2]], ids=lambda v: str(v))
def test_401_without_a_token_and_with_a_wrong_or_revoked_one(world: World, method: str, path: str,
                                                            scope: str) -> None:
    url = _url(path, world)
    for headers in ({}, {"Authorization": "Bearer cb_not-a-token"}, {"Authorization": "Basic abc"}):
        response = world.client.request(method, url, headers=headers)
        assert response.status_code == 401, (method, url, response.text)
        if not path.startswith("/dashboard"):
            assert response.json()["error"]["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "scope"), [r for r in ROUTES if r[2] and r[2] != "auditor"],
                         ids=lambda v: str(v))
def test_403_below_the_routes_scope(world: World, method: str, path: str, scope: str) -> None:
    for weaker in (s for s in RANK if RANK[s] < RANK[scope]):
        response = world.client.request(method, _url(path, world), headers=world.auth(weaker))
        assert response.status_code == 403, (method, path, weaker, response.text)
        assert response.json()["error"] == {
            "code": "forbidden", "message": f"this action needs the {scope} scope; the token has {weaker}"}


def test_scopes_of_key_routes() -> None:
    scopes = {(m, p): s for m, p, s in ROUTES}
    assert scopes[("POST", "/api/v1/tokens")] == "admin"
    assert scopes[("PUT", "/api/v1/sla/{vendor}")] == "admin"
    assert scopes[("POST", "/api/v1/campaigns/{ref}/items")] == "operator"
    assert scopes[("POST", "/api/v1/campaigns/{ref}/cancel")] == "operator"
    assert scopes[("GET", "/api/v1/campaigns/{ref}/judgments")] == "auditor"
    assert scopes[("GET", "/metrics")] == "auditor"


def test_revoked_token_is_refused_and_dashboard_cookie_never_authorises_a_write(world: World) -> None:
    created = world.client.post("/api/v1/tokens", json={"name": "short-lived", "scope": "operator"},
                                headers=world.auth("admin")).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert world.client.get("/api/v1/campaigns", headers=headers).status_code == 200
    assert world.client.delete(f"/api/v1/tokens/{created['id']}", headers=world.auth("admin")).status_code == 200
    response = world.client.get("/api/v1/campaigns", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    cookie_client = world.client
    cookie_client.cookies.set("cb_token", world.tokens["admin"])
    try:
        assert cookie_client.get("/api/v1/campaigns").status_code == 200
        assert cookie_client.post("/api/v1/campaigns", json={"name": "via-cookie"}).status_code == 401
    finally:
        cookie_client.cookies.clear()
