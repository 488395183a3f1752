"""SSRF guard on vendor base URLs and callback targets."""

from __future__ import annotations

import pytest

from service.domain.outbound import check_outbound_url
from service.domain.vendors import connector_for
from service.errors import ConfigError
from service.settings import Settings, VendorSettings

PROD = Settings(env="prod", simulated=VendorSettings(base_url="http://127.0.0.1:9", api_key="real-key"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/", "http://localhost/", "http://10.1.2.3/",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://192.168.0.1/",
                                 "http://100.64.0.1/", "http://0.0.0.0/"])
def test_private_targets_are_refused_in_prod(url: str) -> None:
    with pytest.raises(ConfigError, match="private address|SSRF"):
        check_outbound_url(url, PROD)


@pytest.mark.parametrize("url", ["ftp://vendor.example/", "http:///nohost", "https://user:pw@vendor.example/"])
def test_malformed_or_credentialed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_outbound_url(url, PROD)


def test_allowed_hosts_and_dev_defaults() -> None:
    allowed = PROD.model_copy(update={"allowed_private_hosts": ["127.0.0.1"]})
    assert check_outbound_url("http://127.0.0.1:9/", allowed)
    assert check_outbound_url("http://127.0.0.1:9/", Settings(env="dev"))
    assert check_outbound_url("http://10.0.0.5/", PROD.model_copy(update={"allow_private_urls": True}))


def test_connectors_are_not_built_for_refused_urls() -> None:
    with pytest.raises(ConfigError, match="simulated base URL"):
        connector_for(PROD, "simulated")
