"""What a person does: run `crowdbridge demo --serve`, open the dashboard whose address and token it prints, and
see the run's vendor, throughput, turnaround, agreement and model versions — in a real headless Chromium."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_dashboard import ARTIFACTS, CHROMIUM, _drawn

pytestmark = [pytest.mark.integration, pytest.mark.slow]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (test extra)")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


def _summary_from(demo: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The --json summary the demo prints (indented, several lines) once the run is done."""
    assert demo.stdout is not None
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise AssertionError(f"the demo exited with {demo.returncode} before serving")
        ready, _, _ = select.select([demo.stdout], [], [], 1.0)
        if ready:
            text += os.read(demo.stdout.fileno(), 65536).decode()
            try:
                return json.loads(text)  # type: ignore[no-any-return]
            except json.JSONDecodeError:
                continue
    raise AssertionError(f"no summary within {timeout:.0f}s; stdout so far: {text[-500:]}")


def test_the_dashboard_the_demo_prints_shows_the_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDBRIDGE_")}
    env.update({"CROWDBRIDGE_DATA_DIR": str(tmp_path), "CROWDBRIDGE_REWARD_BACKBONE": "tiny-bert",
                "CROWDBRIDGE_BATCH_SIZE": "20"})
    demo = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--items", "40", "--raters", "3", "--json",
                             "--serve", "--timeout", "240"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        summary = _summary_from(demo, timeout=280)
        url, token = summary["dashboard"]["url"], summary["dashboard"]["token"]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_url(url)
            charts = page.eval_on_selector_all("svg.chart", """els => els.map(e => ({kind: e.dataset.kind,
                points: Number(e.dataset.points), title: e.querySelector('title').textContent,
                drawn: e.querySelectorAll('path.series, rect.bar, circle').length,
                width: e.getBoundingClientRect().width}))""")
            for word in ("throughput", "turnaround", "held-out accuracy"):
                _drawn(charts, word)
            vendor_row = page.inner_text("tr.vendor-row[data-vendor=simulated]")
            assert vendor_row.split()[0] == "simulated"
            page.click("#campaigns a >> nth=0")
            page.wait_for_selector("svg.chart")
            charts = page.eval_on_selector_all("svg.chart", """els => els.map(e => ({kind: e.dataset.kind,
                points: Number(e.dataset.points), title: e.querySelector('title').textContent,
                drawn: e.querySelectorAll('path.series, rect.bar, circle').length,
                width: e.getBoundingClientRect().width}))""")
            for word in ("alpha", "per rater", "throughput", "turnaround"):
                _drawn(charts, word)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo-campaign.png"), full_page=True)
            page.goto(url.replace("/dashboard", "/dashboard/models"))
            versions = page.inner_text("#models")
            assert "demo-rm" in versions and f"v{summary['reward_model']['version']}" in versions
            assert errors == [], errors
            browser.close()
    finally:
        demo.send_signal(signal.SIGINT)  # how --serve ends
        demo.wait(timeout=60)
    assert demo.returncode == 0
