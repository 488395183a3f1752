"""Every connector through the one contract (see ``contract.py``), against its vendor on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.connectors import harnesses
from tests.connectors.contract import run_cancel_before_done, run_contract

pytestmark = pytest.mark.integration

VENDORS = sorted(harnesses.FACTORIES)


@pytest.mark.parametrize("vendor_harness", VENDORS, indirect=True)
def test_contract(vendor_harness: Any, tmp_path: Path) -> None:
    with vendor_harness() as harness:
        report = run_contract(harness, tmp_path)
    assert report["stored"] > 0


@pytest.mark.parametrize("vendor_harness", VENDORS, indirect=True)
def test_cancel_before_the_work_is_done(vendor_harness: Any, tmp_path: Path) -> None:
    with vendor_harness(turnaround_s=30.0) as harness:
        run_cancel_before_done(harness, tmp_path)
