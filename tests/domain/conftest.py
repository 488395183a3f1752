from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings, VendorSettings
from service.storage.db import migrate
from tests.support import API_KEY, Vendor, running_vendor


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vendor]:
    with running_vendor(tmp_path_factory.mktemp("vendor"), "--turnaround=0.2") as v:
        yield v


@pytest.fixture
def settings(tmp_path: Path, vendor: Vendor) -> Settings:
    s = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'cb.db'}", batch_size=10,
                 poll_interval_s=0.2, simulated=VendorSettings(base_url=vendor.url, api_key=API_KEY,
                                                               reward_per_judgment=0.1))
    migrate(s.resolved_database_url)
    vendor.set_faults(error_rate=0, rate_limit_rate=0, slow_rate=0, duplicate_rate=0, malformed_rate=0)
    return s
