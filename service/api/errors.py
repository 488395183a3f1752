"""One exception handler: every error becomes ``{"error": {"code", "message"}}`` with a status by class.

The status of a ``CrowdbridgeError`` is looked up along its class's MRO in ``STATUS`` (so a new
subclass inherits its parent's status); request validation and framework errors get codes too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.errors import CrowdbridgeError
from service.aggregation import AggregationInputError
from service.errors import InvalidInput

__all__ = ["STATUS", "PayloadTooLarge", "install_error_handlers", "error_body"]

log = logging.getLogger(__name__)


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the {limit} byte limit; split it into several uploads")
        self.limit = limit


STATUS: dict[str, int] = {
    "unauthenticated": 401,
    "webhook_rejected": 401,
    "forbidden": 403,
    "not_found": 404,
    "unknown_vendor": 404,
    "invalid_transition": 409,
    "budget_exceeded": 409,
    "duplicate_vendor": 409,
    "payload_too_large": 413,
    "invalid_input": 422,
    "vendor_rate_limited": 503,
    "vendor_unavailable": 503,
    "vendor_auth": 502,
    "vendor_rejected": 502,
    "vendor_error": 502,
    "config_error": 500,
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def status_for(exc: CrowdbridgeError) -> int:
    for cls in type(exc).__mro__:
        code = getattr(cls, "code", None)
        if code in STATUS:
            return STATUS[code]
    return 500


async def _crowdbridge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CrowdbridgeError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 and exc.code == "unauthenticated" else None
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(error_body(exc.code, str(exc)), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
    message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details[:5])
    return JSONResponse(error_body("validation_error", message or "invalid request", details=details),
                        status_code=422)


async def _value_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body("invalid_input", str(exc)), status_code=422)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # e.g. a NUL byte in a text parameter, which PostgreSQL refuses
    return JSONResponse(error_body("invalid_input", "a parameter holds a value the database cannot store"),
                        status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}.get(
        exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "an unexpected error occurred; see the server log"),
                        status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CrowdbridgeError, _crowdbridge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(AggregationInputError, _value_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
