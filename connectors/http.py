"""HTTP plumbing shared by connectors: client construction and error mapping at the edge.

Every connector sends requests through :func:`request`, which turns transport errors and
HTTP status codes into the ``connectors.errors`` tree (always ``raise ... from exc``), the
way httpx maps httpcore's exceptions. Secrets never enter an error message.
"""

from __future__ import annotations

import email.utils
import time
from datetime import datetime, timezone
from typing import Any

import httpx

from connectors.errors import RateLimited, VendorAuthError, VendorRejected, VendorUnavailable

__all__ = ["build_client", "parse_retry_after", "request"]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)


def build_client(base_url: str, *, headers: dict[str, str] | None = None, auth: Any = None,
                 timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """A client with explicit timeouts. Tests pass ``transport`` to swap the wire, never patch."""
    return httpx.Client(base_url=base_url, headers=headers or {}, auth=auth, timeout=timeout,
                        transport=transport, follow_redirects=False)


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """Retry-After as seconds (delta-seconds or an HTTP date); ``default`` when absent or unreadable."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def request(client: httpx.Client, method: str, url: str, *, vendor: str, batch_id: str | None = None,
            ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
    """Send one request; return the response on 2xx (or a status in ``ok``), else raise mapped.

    Timeouts, connection errors and 5xx -> VendorUnavailable; 429 -> RateLimited with the
    Retry-After seconds; 401/403 -> VendorAuthError; other 4xx -> VendorRejected.
    """
    started = time.monotonic()
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise VendorUnavailable(f"{vendor}: {method} {url} timed out after {time.monotonic() - started:.1f}s",
                                vendor=vendor, batch_id=batch_id) from exc
    except httpx.TransportError as exc:
        raise VendorUnavailable(f"{vendor}: {method} {url} failed: {type(exc).__name__}",
                                vendor=vendor, batch_id=batch_id) from exc
    status = response.status_code
    if status < 400 or status in ok:
        return response
    detail = response.text[:200]
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        if status == 429:
            raise RateLimited(f"{vendor}: rate limited on {method} {url}", vendor=vendor, batch_id=batch_id,
                              retry_after=parse_retry_after(response.headers.get("Retry-After"))) from exc
        if status >= 500:
            raise VendorUnavailable(f"{vendor}: {method} {url} -> {status}", vendor=vendor,
                                    batch_id=batch_id) from exc
        if status in (401, 403):
            raise VendorAuthError(f"{vendor}: {method} {url} -> {status} (check the API key)", vendor=vendor,
                                  batch_id=batch_id) from exc
        raise VendorRejected(f"{vendor}: {method} {url} -> {status}: {detail}", vendor=vendor,
                             batch_id=batch_id) from exc
    raise AssertionError("unreachable")  # pragma: no cover
