"""Outbound URL policy: vendor base URLs and callback targets may not point into private
networks (SSRF) unless configuration allows it.

Refused by default outside dev/test: loopback, RFC 1918 private, link-local (cloud metadata at
169.254.169.254), CGNAT, multicast, reserved and unspecified addresses — checked on every address
the host name resolves to, so a public name that resolves to 10.x is refused too. Allow a host with
``CROWDBRIDGE_ALLOWED_PRIVATE_HOSTS`` or all of them with ``CROWDBRIDGE_ALLOW_PRIVATE_URLS=true``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from service.errors import ConfigError
from service.settings import Settings

__all__ = ["check_outbound_url"]


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return bool(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or (ip.version == 4 and ip in ipaddress.ip_network("100.64.0.0/10")))


def check_outbound_url(url: str, settings: Settings, *, purpose: str = "vendor base URL") -> str:
    """Return ``url`` if crowdbridge may call it; raise ConfigError saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{purpose} {url!r} must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ConfigError(f"{purpose} must not carry credentials in the URL; use the vendor's api_key setting")
    host = parts.hostname
    if settings.private_urls_allowed or host in settings.allowed_private_hosts:
        return url
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ConfigError(f"{purpose} host {host!r} does not resolve") from exc
    for info in infos:
        address = str(info[4][0])
        if _private(address):
            raise ConfigError(f"{purpose} {host!r} resolves to the private address {address}; refused (SSRF "
                              "guard). Allow it with CROWDBRIDGE_ALLOWED_PRIVATE_HOSTS if it is yours")
    return url
