"""The fakes must work with each vendor's OFFICIAL SDK (bench/test-only dependencies, in their own venv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.connectors import harnesses

pytestmark = pytest.mark.integration

# toloka-kit 1.2.3 imports httpx._types.VerifyTypes, gone in httpx 0.28
SDKS = ["scaleapi==2.18.4", "surge-api==1.5.24", "toloka-kit==1.2.3", "argilla==2.8.0", "boto3", "httpx<0.28",
        "cattrs<23.2"]  # and toloka-kit 1.2.3 needs the older cattrs converter API
DRIVER = Path(__file__).with_name("sdk_driver.py")


@pytest.fixture(scope="session")
def sdk_python() -> str:
    """``~/.cache/crowdbridge/sdk-venv`` with the vendor SDKs, created once and reused (like Label Studio's)."""
    cache = Path(os.environ.get("CROWDBRIDGE_CACHE_DIR", Path.home() / ".cache" / "crowdbridge"))
    venv = cache / "sdk-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / "sdk-install.log", "wb") as log:
            steps = [[sys.executable, "-m", "venv", str(venv)], [str(python), "-m", "pip", "install", *SDKS]]
            for step in steps:
                if subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, timeout=900).returncode != 0:
                    pytest.skip(f"could not create the SDK venv {venv}; see {cache / 'sdk-install.log'}")
    return str(python)


def _drive(python: str, vendor: str, url: str, key: str) -> dict[str, Any]:
    done = subprocess.run([python, str(DRIVER), vendor, url, key], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("vendor", ["scale", "surge", "toloka", "argilla"])
def test_official_sdk_drives_the_fake(sdk_python: str, vendor: str) -> None:
    with harnesses.FACTORIES[vendor]() as h:
        url = h.section["base_url"].removesuffix("/v1").removesuffix("/api")  # each SDK adds its own prefix
        seen = _drive(sdk_python, vendor, url, harnesses.API_KEY)
        ledger = h.fake.ledger()
    if vendor == "scale":
        assert seen["refused"] and seen["listed"] == [seen["task"]]  # the repeated unique_id -> 409
    elif vendor == "surge":
        assert len(seen["tasks"]) == 1 and seen["status"] == "in_progress"
    elif vendor == "toloka":
        assert seen["pool_status"] == "OPEN"
    else:  # the second dataset.records.log() of the same external ids upserted: nothing created twice
        assert seen["logged"] == ["Updated 0 records and added 3 records to dataset sdk-dataset",
                                  "Updated 3 records and added 0 records to dataset sdk-dataset"]
        ids = [f"sdk-item-{i}" for i in range(3)]
        assert list(seen["records"]) == ids and seen["progress"] == {"total": 3, "completed": 3, "pending": 0}
        records = {f"record:{i}@{seen['dataset']}": 1 for i in ids}
        assert ledger["creations"] == {"dataset:sdk-dataset": 1, **records}
        assert ledger["counters"]["records_updated"] == 3
        assert seen["min_submitted"] == 2 and seen["questions"] == ["preference"]
        for record in seen["records"].values():  # min_submitted distinct raters, each a submitted label
            assert record["status"] == "completed" and len({a["user"] for a in record["answers"]}) == 2
            assert all(a["status"] == "submitted" and a["value"] in ("A", "B", "tie")
                       for a in record["answers"])
    assert ledger["counters"]["requests"] >= 3
