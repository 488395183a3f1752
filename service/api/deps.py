"""Request dependencies: settings, a session, and the caller (token + scope) for each route.

A token comes as ``Authorization: Bearer <token>`` or, for the dashboard in a browser, as the
``cb_token`` cookie set by ``/dashboard/login`` (HttpOnly, SameSite=Strict). Routes declare
the scope they need with ``Depends(require(Scope.operator))``; the scope is also recorded on
the route (``openapi_extra``) so the auth tests can walk every route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlmodel import Session

from service.domain.tokens import Pseudonymizer, authenticate, pseudonymizer, require_scope
from service.settings import Settings
from service.storage.db import get_engine
from service.storage.models_api import ApiToken, Scope

__all__ = ["COOKIE", "Caller", "get_session", "get_settings", "require"]

COOKIE = "cb_token"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(settings: Settings = Depends(get_settings)) -> Iterator[Session]:
    session = Session(get_engine(settings.resolved_database_url), expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


@dataclass(frozen=True)
class Caller:
    token: ApiToken
    pseudonym: Pseudonymizer

    @property
    def scope(self) -> Scope:
        return self.token.scope


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    if request.method in ("GET", "HEAD"):  # the dashboard's cookie never authorises a write (no CSRF)
        return request.cookies.get(COOKIE)
    return None


def require(scope: Scope) -> Callable[..., Caller]:
    def dependency(request: Request, session: Session = Depends(get_session)) -> Caller:
        token = authenticate(session, bearer(request))
        require_scope(token, scope)
        return Caller(token=token, pseudonym=pseudonymizer(session, token.scope))

    dependency.__name__ = f"require_{scope.value}"
    return dependency
