"""Builds connectors from settings: the only place that unwraps vendor secrets."""

from __future__ import annotations

import httpx

from connectors.base import Connector
from connectors.registry import get_connector_class
from service.settings import Settings

__all__ = ["connector_for"]


def connector_for(settings: Settings, vendor: str, *, transport: httpx.BaseTransport | None = None) -> Connector:
    cls = get_connector_class(vendor)
    return cls.from_options(settings.vendor(vendor).connector_options(), transport=transport)
