"""The FastAPI application: REST API under ``/api/v1``, dashboard under ``/dashboard``, ``/healthz``,
``/metrics``, ``/webhooks/{vendor}``; OpenAPI docs at ``/docs``."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from service.api import dashboard, routes_campaigns, routes_service
from service.api.config import ApiConfig
from service.api.errors import error_body, install_error_handlers
from service.api.metrics import build_registry
from service.domain.tokens import Unauthenticated
from service.settings import Settings, get_settings

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"


async def _unauthenticated(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/dashboard") and request.method == "GET":
        return dashboard.templates.TemplateResponse(request, "login.html", {"caller": None, "error": str(exc)},
                                                    status_code=401)
    return JSONResponse(error_body(Unauthenticated.code, str(exc)), status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


def create_app(settings: Settings | None = None, config: ApiConfig | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: the environment's). Nothing connects until a request."""
    app = FastAPI(title="crowdbridge", version="1",
                  description="RLHF human feedback from labeling vendors: campaigns, judgments, consensus, "
                              "vendor analytics, reward models. Send `Authorization: Bearer <token>`.")
    app.state.settings = settings or get_settings()
    app.state.api_config = config or ApiConfig()
    app.state.metrics_registry = build_registry(app.state.settings)
    install_error_handlers(app)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.include_router(routes_service.router)
    app.include_router(routes_campaigns.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
