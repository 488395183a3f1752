"""`crowdbridge campaign create|push|status|export` against the configured database and broker."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import app
from service.domain.outbox import PIPELINE_QUEUES
from tests.support import pairwise_items, wait_for, worker
from tests.workers.loop import loop_backend

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_campaign_commands_run_the_loop_with_a_separate_worker(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(i) for i in pairwise_items(30)) + "\n")
    runner = CliRunner()
    with loop_backend("embedded", tmp_path, monkeypatch) as loop:
        w = worker(loop.env, tmp_path / "worker.log", queues=PIPELINE_QUEUES)
        loop.stack.callback(w.stop)
        created = runner.invoke(app, ["campaign", "create", "cli-c", "--items", str(items), "--raters", "3",
                                      "--json"])
        assert created.exit_code == 0, created.output
        assert json.loads(created.stdout)["items"] == 30
        again = runner.invoke(app, ["campaign", "create", "cli-c", "--items", str(items)])
        assert again.exit_code != 0 and "already exists" in str(again.exception)
        pushed = runner.invoke(app, ["campaign", "push", "cli-c", "--json"])
        assert pushed.exit_code == 0, pushed.output
        assert json.loads(pushed.stdout)["batches"] == 2  # 25 items per batch in the test settings

        def status() -> dict:
            out = runner.invoke(app, ["campaign", "status", "cli-c", "--json"])
            assert out.exit_code == 0, out.output
            data = json.loads(out.stdout)
            return data if data["status"] == "completed" else {}

        final = wait_for(status, timeout=120, what="the campaign to complete")
        assert final["judgments"] >= 90 and final["consensus_items"] == 30
        assert final["spent_usd"] == pytest.approx(final["judgments"] * 0.05)
        out = tmp_path / "judgments.parquet"
        exported = runner.invoke(app, ["campaign", "export", "cli-c", "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        frame = pd.read_parquet(out)
        assert len(frame) == final["judgments"] and frame["vendor_judgment_id"].is_unique
        assert {"rater_id", "label", "raw", "started_at", "submitted_at", "cost"} <= set(frame.columns)
        consensus = tmp_path / "consensus.csv"
        assert runner.invoke(app, ["campaign", "export", "cli-c", "--out", str(consensus),
                                   "--what", "consensus"]).exit_code == 0
        assert len(pd.read_csv(consensus)) >= 30


def test_worker_refuses_an_unknown_queue_and_warns_when_nothing_consumes_reconcile() -> None:
    from service.cli import check_worker_queues

    result = CliRunner().invoke(app, ["worker", "--queues", "defualt"])
    assert result.exit_code == 2 and "unknown queue" in result.output and "defualt" in result.output
    assert check_worker_queues("default,reconcile,training") == []
    assert check_worker_queues("training") == []
    assert "reconcile" in check_worker_queues("default")[0]
