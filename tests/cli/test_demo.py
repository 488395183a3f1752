"""`crowdbridge demo` end to end as a user runs it, and its clean-up on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDBRIDGE_")}
    env.update({"CROWDBRIDGE_DATA_DIR": str(tmp_path), "CROWDBRIDGE_REWARD_BACKBONE": "tiny-bert",
                "CROWDBRIDGE_BATCH_SIZE": "20"})
    return env


def _children_of_run(tmp_path: Path, exclude: int | None = None) -> list[psutil.Process]:
    """Processes started for this run: the path is on their command line or in their environment."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid in (os.getpid(), exclude):
            continue
        try:
            cmdline = " ".join(proc.info.get("cmdline") or [])
            env_dir = proc.environ().get("CROWDBRIDGE_DATA_DIR", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if str(tmp_path) in cmdline or env_dir.startswith(str(tmp_path)):
            found.append(proc)
    return found


def test_demo_json_reports_real_numbers_and_leaves_nothing_running(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "service.cli", "demo", "--items", "40", "--raters", "3",
                           "--json", "--timeout", "240"], env=_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["items"] == 40 and summary["raters_per_item"] == 3
    assert summary["judgments"] == summary["judgments_produced_by_vendor"] >= 120
    assert summary["quarantined"] == summary["malformed_sent_by_vendor"]
    assert summary["vendor_batches_created"] == summary["batches"]
    assert 0.5 < summary["consensus_accuracy"]["mv"] <= 1 and 0.5 < summary["consensus_accuracy"]["ds"] <= 1
    assert summary["reward_model"]["version"] >= 1
    assert 0.0 <= summary["reward_model"]["human_test_accuracy"] <= 1.0
    assert set(summary["stages_s"]) >= {"setup", "all_batches_submitted", "reward_model_trained"}
    time.sleep(1)
    assert not _children_of_run(tmp_path), "the demo left processes running"  # demo itself has exited


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--items", "40", "--json"],
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("celery" in " ".join(p.cmdline()) for p in
                                                  _children_of_run(tmp_path, demo.pid)):
        time.sleep(0.3)
    assert _children_of_run(tmp_path, demo.pid), "the demo never started its worker"
    demo.send_signal(signal.SIGINT)
    _, err = demo.communicate(timeout=60)
    assert demo.returncode == 130, err[-2000:]
    assert b"interrupted" in err
    time.sleep(1)
    assert not _children_of_run(tmp_path, demo.pid), "a process outlived Ctrl-C"
