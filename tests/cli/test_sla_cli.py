"""`crowdbridge sla list|set` and `crowdbridge analytics-timeseries` over the same domain functions as the API."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import Settings, get_settings
from tests.domain.test_pipeline import _campaign, _run_to_completion

pytestmark = pytest.mark.integration


def test_sla_and_timeseries_commands(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    campaign_id = _campaign(settings, n=10)
    _run_to_completion(settings, campaign_id)
    monkeypatch.setenv("CROWDBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("CROWDBRIDGE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        done = runner.invoke(app, ["sla", "set", "simulated", "turnaround_p95_s", "0.001", "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout) == {"vendor": "simulated", "metric": "turnaround_p95_s", "limit": 0.001,
                                           "direction": "max"}
        listed = json.loads(runner.invoke(app, ["sla", "list", "--json"]).stdout)
        assert [r["metric"] for r in listed] == ["turnaround_p95_s"]
        bad = runner.invoke(app, ["sla", "set", "simulated", "made_up", "1"])
        assert bad.exit_code != 0 and "unknown SLA metric" in str(bad.exception)
        alerts = json.loads(runner.invoke(app, ["analytics", "--json"]).stdout)
        assert any(a["metric"] == "turnaround_p95_s" for row in alerts for a in row["alerts"])
        series = json.loads(runner.invoke(app, ["analytics-timeseries", "--campaign", str(campaign_id),
                                                "--buckets", "4", "--json"]).stdout)
        stored = json.loads(runner.invoke(app, ["campaign", "status", str(campaign_id), "--json"]).stdout)["judgments"]
        assert series and sum(r["judgments"] for r in series) == stored >= 30  # + extra rounds for contested items
    finally:
        get_settings.cache_clear()
