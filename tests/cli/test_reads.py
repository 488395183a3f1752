"""The CLI's read commands (service/cli/reads.py) on a SQLite database filled by the domain use cases
in-process against the real simulated vendor: tables by default, one JSON document with --json, the same
rows as the API's read routes, clear errors for unknown campaigns."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from service.api import create_app
from service.api import schemas
from service.cli import app, main, reads
from service.domain.campaigns import get_campaign
from service.domain.retrain import maybe_enqueue_retrain
from service.domain.tokens import create_token
from service.settings import Settings, VendorSettings, get_settings
from service.storage.db import migrate, session_scope
from tests.domain.test_pipeline import _campaign, _run_to_completion
from tests.support import API_KEY, running_vendor

pytestmark = pytest.mark.integration


@dataclass
class Filled:
    settings: Settings
    name: str
    other: str  # a second campaign, so filters by campaign are seen to filter
    client: TestClient
    auth: dict[str, str]  # an admin token: plain rater ids and raw payloads, as the CLI shows them


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    tmp = tmp_path_factory.mktemp("reads")
    with running_vendor(tmp, "--turnaround=0.2") as vendor, pytest.MonkeyPatch.context() as mp:
        settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'cb.db'}", batch_size=10,
                            poll_interval_s=0.2, simulated=VendorSettings(base_url=vendor.url, api_key=API_KEY,
                                                                          reward_per_judgment=0.1))
        migrate(settings.resolved_database_url)
        ids = [_campaign(settings, n=n) for n in (24, 10)]
        for campaign_id in ids:
            _run_to_completion(settings, campaign_id)
        with session_scope(settings.resolved_database_url) as s:
            campaign = get_campaign(s, ids[0])
            maybe_enqueue_retrain(s, settings, campaign, trigger="manual", force=True)  # unless policy queued one
            names = [campaign.name, get_campaign(s, ids[1]).name]
            token = create_token(s, name="reads-admin", scope="admin").plain
            s.commit()
        mp.setenv("CROWDBRIDGE_DATA_DIR", str(tmp))
        mp.setenv("CROWDBRIDGE_DATABASE_URL", settings.resolved_database_url)
        get_settings.cache_clear()
        try:
            with TestClient(create_app(settings)) as client:
                yield Filled(settings, names[0], names[1], client, {"Authorization": f"Bearer {token}"})
        finally:
            get_settings.cache_clear()


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a wide terminal shows them, so the assertions can find whole names and ids."""
    monkeypatch.setattr(reads, "out", Console(width=250))


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json"))


def api(filled: Filled, path: str, **params: Any) -> Any:
    response = filled.client.get(f"/api/v1{path}", params=params, headers=filled.auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_json_rows_carry_the_fields_of_the_api_schemas() -> None:
    assert set(reads.CAMPAIGN_FIELDS) == {k for k, f in schemas.CampaignOut.model_fields.items() if f.is_required()}
    assert set(reads.BATCH_FIELDS) == set(schemas.BatchOut.model_fields)
    assert set(reads.JUDGMENT_FIELDS) == set(schemas.JudgmentOut.model_fields)
    assert set(reads.CONSENSUS_FIELDS) == set(schemas.ConsensusOut.model_fields)
    assert set(reads.AGREEMENT_FIELDS) == set(schemas.AgreementOut.model_fields) | {"details"}
    assert set(reads.RETRAIN_JOB_FIELDS) == set(schemas.RetrainJobOut.model_fields)


def test_campaign_list(filled: Filled) -> None:
    rows = cli_json("campaign", "list")
    assert [r["name"] for r in rows] == [filled.other, filled.name]  # newest first, as the API
    assert rows == [{k: v for k, v in r.items() if k in reads.CAMPAIGN_FIELDS} for r in api(filled, "/campaigns")]
    assert cli_json("campaign", "list", "--status", "draft") == []
    table = cli("campaign", "list")
    assert "campaigns" in table and filled.name[:6] in table


def test_campaign_batches(filled: Filled) -> None:
    rows = cli_json("campaign", "batches", filled.name)
    assert len(rows) >= 3 and {r["status"] for r in rows} == {"completed"}
    assert rows == api(filled, f"/campaigns/{filled.name}/batches")
    assert cli_json("campaign", "batches", filled.name, "--status", "pending") == []
    assert "batches of" in cli("campaign", "batches", filled.name)


def test_campaign_judgments_pages_with_the_api_cursor(filled: Filled) -> None:
    first = cli_json("campaign", "judgments", filled.name, "--limit", "25")
    assert first == api(filled, f"/campaigns/{filled.name}/judgments", limit=25)
    assert len(first["items"]) == 25 and first["next_cursor"]
    seen, cursor = [r["id"] for r in first["items"]], first["next_cursor"]
    while cursor:
        page = cli_json("campaign", "judgments", filled.name, "--limit", "25", "--cursor", cursor)
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) >= 24 * 3
    rater = first["items"][0]["rater_id"]
    by_rater = cli_json("campaign", "judgments", filled.name, "--rater", rater, "--limit", "1000")
    assert by_rater["items"] and {r["rater_id"] for r in by_rater["items"]} == {rater}
    assert by_rater == api(filled, f"/campaigns/{filled.name}/judgments", rater_id=rater, limit=1000)
    table = cli("campaign", "judgments", filled.name, "--limit", "5")
    assert "judgments of" in table and rater[:6] in cli("campaign", "judgments", filled.name, "--rater", rater)


def test_campaign_consensus(filled: Filled) -> None:
    auto = cli_json("campaign", "consensus", filled.name, "--limit", "1000")
    assert len(auto["items"]) == 24 and {r["method"] for r in auto["items"]} == {"auto"}
    assert auto == api(filled, f"/campaigns/{filled.name}/consensus", method="auto", limit=1000)
    every = cli_json("campaign", "consensus", filled.name, "--method", "all", "--limit", "1000")
    assert {r["method"] for r in every["items"]} == {"mv", "ds", "auto"}
    contested = cli_json("campaign", "consensus", filled.name, "--contested", "--limit", "1000")
    assert contested == api(filled, f"/campaigns/{filled.name}/consensus", method="auto", contested=True,
                            limit=1000)
    assert all(r["contested"] for r in contested["items"])
    assert "consensus of" in cli("campaign", "consensus", filled.name)
    bad = CliRunner().invoke(app, ["campaign", "consensus", filled.name, "--method", "best"])
    assert bad.exit_code == 2 and "mv, ds, auto" in bad.output


def test_campaign_agreement(filled: Filled) -> None:
    rows = cli_json("campaign", "agreement", filled.name)
    from_api = api(filled, f"/campaigns/{filled.name}/agreement")
    assert [{k: v for k, v in r.items() if k != "details"} for r in rows] == \
        [r for r in from_api if r["scope"] in reads.AGREEMENT_SCOPES]
    alpha = [r for r in rows if r["scope"] == "campaign" and r["metric"] == "krippendorff_alpha"]
    assert len(alpha) == 1 and alpha[0]["value"] is not None and alpha[0]["ci_low"] is not None
    assert {r["scope"] for r in rows} == {"campaign", "vendor", "batch", "rater"}
    assert {r["metric"] for r in rows if r["scope"] == "rater"} == {"accuracy_vs_consensus", "flags"}
    assert all("flags" in r["details"] for r in rows if r["metric"] == "flags")
    assert cli_json("campaign", "agreement", filled.name, "--scope", "vendor") == \
        [r for r in rows if r["scope"] == "vendor"]
    table = cli("campaign", "agreement", filled.name)
    assert "krippendorff_alpha" in table and "raters in" in table


def test_retrain_jobs(filled: Filled) -> None:
    rows = cli_json("retrain-jobs")
    assert rows == api(filled, "/retrain-jobs") and rows
    mine = cli_json("retrain-jobs", "--campaign", filled.name)
    assert mine == api(filled, "/retrain-jobs", campaign=filled.name)
    assert mine and len({r["campaign_id"] for r in mine}) == 1
    theirs = cli_json("retrain-jobs", "--campaign", filled.other)
    assert sorted(r["id"] for r in mine + theirs) == sorted(r["id"] for r in rows)
    assert "retraining jobs" in cli("retrain-jobs")


@pytest.mark.parametrize("args", [["campaign", "batches"], ["campaign", "judgments"], ["campaign", "consensus"],
                                  ["campaign", "agreement"], ["retrain-jobs", "--campaign"]])
def test_unknown_campaign_is_a_clear_error(filled: Filled, args: list[str], capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"no-such-{uuid.uuid4().hex[:6]}"
    monkeypatch.setattr(sys, "argv", ["crowdbridge", *args, missing, "--json"])
    with pytest.raises(SystemExit) as exit_:
        main()
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and captured.out == ""
    assert f"error (not_found): campaign {missing} not found" in " ".join(captured.err.split())
    assert "Traceback" not in captured.err


def test_the_cli_reads_without_loading_the_http_api() -> None:
    code = "import sys, service.cli; assert 'fastapi' not in sys.modules and 'service.api' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
