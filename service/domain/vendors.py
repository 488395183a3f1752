"""Builds connectors from settings: the only place that unwraps vendor secrets."""

from __future__ import annotations

import httpx

from connectors.base import Connector
from connectors.registry import get_connector_class
from service.domain.outbound import check_outbound_url
from service.settings import Settings

__all__ = ["connector_for"]


def connector_for(settings: Settings, vendor: str, *, transport: httpx.BaseTransport | None = None) -> Connector:
    cls = get_connector_class(vendor)
    options = settings.vendor(vendor).connector_options()
    if options.get("base_url"):
        check_outbound_url(str(options["base_url"]), settings, purpose=f"{vendor} base URL")
    return cls.from_options(options, transport=transport)
