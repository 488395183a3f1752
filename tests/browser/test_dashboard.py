"""The dashboard in a real headless Chromium, on data from a real run: every page loads, its charts
render with data, the browser logs no console errors; a screenshot of each page is kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from service.storage.db import migrate
from tests.service.run import TURNAROUND_S, Run, produce_run, run_settings, train
from tests.support import REPO, fresh_postgres, postgres_available, running_vendor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("CROWDBRIDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CROWDBRIDGE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (test extra)")
if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Any]]:
    from service.api import start_api_in_background

    tmp = tmp_path_factory.mktemp("browser")
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if postgres_available() else f"sqlite:///{tmp / 'cb.db'}"
        vendor = stack.enter_context(running_vendor(tmp, f"--turnaround={TURNAROUND_S}"))
        settings = run_settings(tmp, url, vendor.url)
        migrate(url)
        run = produce_run(settings, n_items=60, raters=3, models=1)
        train(settings, run.campaign_id)  # a second model version: accuracy over time has a line
        handle = start_api_in_background(settings, admin_token="browser-test")
        stack.callback(handle.stop)
        yield run, handle


@pytest.fixture(scope="module")
def page(served: tuple[Run, Any]) -> Iterator[Any]:
    run, handle = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))  # type: ignore[attr-defined]
        page.goto(f"{handle.url}/dashboard")
        assert page.locator("#token").count() == 1  # not signed in: the login form (401)
        page.fill("#token", "cb_wrong")
        page.click("#sign-in")
        assert "unknown API token" in page.inner_text("#login-error")
        page.console_errors.clear()  # type: ignore[attr-defined]  # the 401 answers above are logged as errors
        page.fill("#token", handle.token)
        page.click("#sign-in")
        page.wait_for_url(f"{handle.url}/dashboard")
        yield page
        browser.close()


def _visit(page: Any, url: str, shot: str) -> list[dict[str, Any]]:
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    charts = page.eval_on_selector_all("svg.chart", """els => els.map(e => ({kind: e.dataset.kind,
        points: Number(e.dataset.points), title: e.querySelector('title').textContent,
        drawn: e.querySelectorAll('path.series, rect.bar, circle').length,
        width: e.getBoundingClientRect().width}))""")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    assert page.console_errors == [], page.console_errors  # type: ignore[attr-defined]
    return charts  # type: ignore[no-any-return]


def _drawn(charts: list[dict[str, Any]], word: str) -> dict[str, Any]:
    chart = next(c for c in charts if word.lower() in c["title"].lower())
    assert chart["points"] > 0 and chart["drawn"] > 0 and chart["width"] > 300, chart
    return chart


def test_overview(page: Any, served: tuple[Run, Any]) -> None:
    run, handle = served
    charts = _visit(page, f"{handle.url}/dashboard", "overview")
    for word in ("throughput", "turnaround", "held-out accuracy"):
        _drawn(charts, word)
    assert run.name in page.inner_text("#campaigns")
    assert page.locator("tr.vendor-row[data-vendor=simulated]").count() == 1


def test_campaign_page(page: Any, served: tuple[Run, Any]) -> None:
    run, handle = served
    charts = _visit(page, f"{handle.url}/dashboard/campaigns/{run.campaign_id}", "campaign")
    for word in ("throughput", "turnaround", "alpha", "per rater", "confidence", "budget"):
        _drawn(charts, word)
    assert _drawn(charts, "per rater")["points"] > 10
    assert page.locator("#contested").count() == 1 and page.locator("#flagged").count() == 1


def test_vendors_page(page: Any, served: tuple[Run, Any]) -> None:
    run, handle = served
    charts = _visit(page, f"{handle.url}/dashboard/vendors?campaign={run.campaign_id}", "vendors")
    _drawn(charts, "throughput")
    row = page.inner_text("tr.vendor-row[data-vendor=simulated]")
    assert "0.0700" in row  # USD per accepted judgment = the vendor's reward


def test_models_and_provenance_card(page: Any, served: tuple[Run, Any]) -> None:
    run, handle = served
    charts = _visit(page, f"{handle.url}/dashboard/models", "models")
    assert _drawn(charts, "held-out accuracy")["points"] == 2
    page.click("#models a >> nth=0")
    page.wait_for_selector("section.card")
    _visit(page, page.url, "model-card")
    card = page.inner_text("section.card")
    assert run.name in card and "heldout_accuracy" in card and "judgments" in card


def test_audit_report(page: Any, served: tuple[Run, Any]) -> None:
    run, handle = served
    charts = _visit(page, f"{handle.url}/api/v1/campaigns/{run.campaign_id}/audit", "audit")
    assert len(charts) == 3
    for word in ("alpha", "per rater", "confidence"):
        _drawn(charts, word)
