"""Builds connectors from settings: the only place that unwraps vendor secrets.

Connectors are cached per process and per option set, so a worker keeps one HTTP client (and its
keep-alive connections) per vendor instead of building a client, with its TLS context, per task.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from connectors.base import Connector
from connectors.registry import get_connector_class
from service.domain.outbound import check_outbound_url
from service.settings import Settings

__all__ = ["connector_for"]

_cache: dict[tuple[str, str], Connector] = {}
_lock = threading.Lock()
MAX_CACHED = 32


def _key(vendor: str, options: dict[str, Any]) -> tuple[str, str]:
    return vendor, json.dumps(options, sort_keys=True, default=str)


def connector_for(settings: Settings, vendor: str, *, transport: httpx.BaseTransport | None = None) -> Connector:
    cls = get_connector_class(vendor)
    options = settings.vendor(vendor).connector_options()
    if options.get("base_url"):
        check_outbound_url(str(options["base_url"]), settings, purpose=f"{vendor} base URL")
    if transport is not None:
        return cls.from_options(options, transport=transport)
    key = _key(vendor, options)
    with _lock:
        connector = _cache.get(key)
        if connector is None:
            if len(_cache) >= MAX_CACHED:
                _cache.clear()
            connector = _cache[key] = cls.from_options(options)
    return connector
