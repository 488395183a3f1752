"""One :class:`Harness` factory per vendor: its fake served on 127.0.0.1 and its settings section."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from connectors.fakes.common import Crowd, FakeVendor, serve_in_thread
from tests.connectors.contract import Harness

API_KEY = "fake-vendor-key-123"


def _handles(prefix: str) -> Any:
    return lambda ledger: {k: v for k, v in ledger["creations"].items() if k.startswith(prefix)}


@contextlib.contextmanager
def scale(**crowd: Any) -> Iterator[Harness]:
    from connectors.fakes.scale import create_app

    vendor = FakeVendor("scale", API_KEY, crowd=Crowd(prefix="scale-qa-", **crowd))
    app = create_app(vendor, callback_key="cb-key")
    with serve_in_thread(app, vendor, ticker=app.state.tick) as fake:
        yield Harness("scale", {"base_url": fake.url + "/v1", "api_key": API_KEY, "webhook_secret": "cb-key",
                                "options": {"project": "rlhf"}}, fake, per_rater=False,
                      creations=lambda ledger: ledger["creations"])


FACTORIES = {"scale": scale}


@contextlib.contextmanager
def surge(**crowd: Any) -> Iterator[Harness]:
    from connectors.fakes.surge import create_app

    vendor = FakeVendor("surge", API_KEY, crowd=Crowd(prefix="surger-", **crowd))
    with serve_in_thread(create_app(vendor), vendor) as fake:
        yield Harness("surge", {"base_url": fake.url, "api_key": API_KEY}, fake,
                      creations=lambda ledger: ledger["creations"])


FACTORIES["surge"] = surge


@contextlib.contextmanager
def toloka(**crowd: Any) -> Iterator[Harness]:
    from connectors.fakes.toloka import create_app

    vendor = FakeVendor("toloka", API_KEY, crowd=Crowd(prefix="tlk", **crowd))
    app = create_app(vendor)
    with serve_in_thread(app, vendor, ticker=app.state.tick) as fake:
        yield Harness("toloka", {"base_url": fake.url + "/api", "api_key": API_KEY, "webhook_secret": "tlk-secret"},
                      fake, creations=lambda ledger: ledger["creations"])


FACTORIES["toloka"] = toloka


LS_SERVER: dict[str, Any] = {}  # set by the session fixture in conftest.py when Label Studio runs


@contextlib.contextmanager
def label_studio(turnaround_s: float = 0.0) -> Iterator[Harness]:
    """The REAL Label Studio behind a fault-injecting proxy; raters are LS users posting annotations."""
    import pytest

    from connectors.fakes.label_studio_crowd import LabelStudioCrowd
    from connectors.fakes.proxy import create_app

    server = LS_SERVER.get("server")
    if server is None:
        pytest.skip(LS_SERVER.get("why", "Label Studio fixture not active"))
    vendor = FakeVendor("label_studio-proxy", server.api_key)
    crowd = LabelStudioCrowd(server.url, server.api_key, n_raters=4, title_prefix="cb ")
    if turnaround_s < 5:
        crowd.start(interval_s=0.3)
    try:
        with serve_in_thread(create_app(server.url, vendor), vendor) as fake:
            yield Harness("label_studio", {"base_url": fake.url, "api_key": server.api_key,
                                           "webhook_secret": "ls-hook-secret", "options": {"page_size": 3}},
                          fake, timeout_s=90.0, extra={"crowd": crowd, "server": server})
    finally:
        crowd.stop()


FACTORIES["label_studio"] = label_studio


def _serve(module: str, vendor: FakeVendor, **kwargs: Any) -> Any:
    import importlib

    app = importlib.import_module(f"connectors.fakes.{module}").create_app(vendor, **kwargs)
    return serve_in_thread(app, vendor, ticker=app.state.tick)


@contextlib.contextmanager
def appen(**crowd: Any) -> Iterator[Harness]:
    vendor = FakeVendor("appen", API_KEY, crowd=Crowd(prefix="4", **crowd))
    with _serve("appen", vendor) as fake:
        yield Harness("appen", {"base_url": fake.url + "/v1", "api_key": API_KEY}, fake,
                      creations=lambda ledger: ledger["creations"])


@contextlib.contextmanager
def prolific(**crowd: Any) -> Iterator[Harness]:
    vendor = FakeVendor("prolific", API_KEY, crowd=Crowd(prefix="6570participant", **crowd))
    with _serve("prolific", vendor) as fake:
        yield Harness("prolific", {"base_url": fake.url + "/api/v1", "api_key": API_KEY,
                                   "webhook_secret": "prolific-secret", "options": {"workspace_id": "ws1"}}, fake,
                      creations=lambda ledger: {k: v for k, v in ledger["creations"].items()
                                                if k.startswith(("batch:", "study:"))})


@contextlib.contextmanager
def argilla(**crowd: Any) -> Iterator[Harness]:
    vendor = FakeVendor("argilla", API_KEY, crowd=Crowd(prefix="annotator", **crowd))
    with _serve("argilla", vendor) as fake:
        yield Harness("argilla", {"base_url": fake.url, "api_key": API_KEY, "webhook_secret": None}, fake,
                      creations=lambda ledger: ledger["creations"])


@contextlib.contextmanager
def mturk(**crowd: Any) -> Iterator[Harness]:
    from connectors.fakes.mturk import ACCESS_KEY_ID

    vendor = FakeVendor("mturk", "fake-secret", crowd=Crowd(prefix="A3FAKEWORKER", **crowd))
    with _serve("mturk", vendor) as fake:
        yield Harness("mturk", {"base_url": fake.url, "api_key": f"{ACCESS_KEY_ID}:fake-secret",
                                "reward_per_judgment": 0.05, "options": {"page_size": 2}}, fake,
                      creations=lambda ledger: {k: v for k, v in ledger["creations"].items() if k.startswith("hit:")})


def toy_scorer(prompt: str, responses: Any) -> list[float]:
    """A deterministic stand-in for a reward model: longer, more specific answers score higher."""
    return [len(set(r.split())) * 0.3 + (hash(r) % 7) * 0.05 for r in responses]


@contextlib.contextmanager
def file(turnaround_s: float = 0.0, **_: Any) -> Iterator[Harness]:
    import csv
    import tempfile
    from datetime import datetime, timezone
    from pathlib import Path

    from connectors.fakes.common import canonical_answer

    with tempfile.TemporaryDirectory(prefix="cb-file-vendor-") as root:
        def export() -> None:
            [folder] = [p for p in Path(root).iterdir() if (p / "items.csv").exists()]
            with (folder / "items.csv").open() as fh:
                items = list(csv.DictReader(fh))
            rows = []
            for item in items:
                for r in range(int(item["raters_wanted"])):
                    rows.append({"item_id": item["item_id"], "worker_id": f"sheet-rater-{r}",
                                 "answer": canonical_answer("pairwise", 2, item["item_id"], str(r)),
                                 "submitted_at": datetime.now(timezone.utc).isoformat(), "cost": "0.02"})
            rows.append(dict(rows[0]))  # the vendor's export repeats a row
            rows.append({"item_id": items[0]["item_id"], "worker_id": "", "answer": "A", "submitted_at": "soon",
                         "cost": ""})  # and has a broken one
            with (folder / "judgments-export.csv").open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

        harness = Harness("file", {"options": {"root": root}}, None, wire=False,
                          inject=None if turnaround_s > 5 else export, timeout_s=10)
        yield harness


@contextlib.contextmanager
def model(turnaround_s: float = 0.0, **_: Any) -> Iterator[Harness]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cb-model-rater-") as state:
        yield Harness("model", {"options": {"scorer": "tests.connectors.harnesses:toy_scorer", "state_dir": state,
                                            "page_size": 2}}, None, wire=False, vendor_faults=False, timeout_s=10)


FACTORIES.update(appen=appen, prolific=prolific, argilla=argilla, mturk=mturk, file=file, model=model)


class _SimulatedVendor:
    """The simulated vendor (a real HTTP server in its own process) behind the contract's fake interface."""

    def __init__(self, url: str) -> None:
        self.url = url

    def set_faults(self, *, fail_after_write: int = 0, rate_limit: int = 0, retry_after: float | None = None,
                   duplicate: int = 0, malformed: int = 0) -> None:
        import httpx

        if retry_after is not None:
            httpx.post(f"{self.url}/sim/faults", json={"retry_after_s": retry_after}, timeout=10).raise_for_status()
        httpx.post(f"{self.url}/sim/once", json={"fail_after_write": fail_after_write, "rate_limit": rate_limit,
                                                 "duplicate": duplicate, "malformed": malformed},
                   timeout=10).raise_for_status()

    def ledger(self) -> dict[str, Any]:
        import httpx

        ledger = httpx.get(f"{self.url}/sim/ledger", timeout=30).json()
        return {**ledger, "creations": ledger["creations_per_external_id"]}


@contextlib.contextmanager
def simulated(turnaround_s: float = 0.3, **_: Any) -> Iterator[Harness]:
    import tempfile
    from pathlib import Path

    from service.processes import free_port, start_vendor_sim

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        process = start_vendor_sim(port=port, state_path=Path(tmp) / "vendor.db", api_key=API_KEY,
                                   extra_args=[f"--turnaround={turnaround_s}"])
        try:
            url = f"http://127.0.0.1:{port}"
            yield Harness("simulated", {"base_url": url, "api_key": API_KEY}, _SimulatedVendor(url),
                          creations=lambda ledger: ledger["creations"])
        finally:
            process.stop()


FACTORIES["simulated"] = simulated


@contextlib.contextmanager
def model_from_dir(turnaround_s: float = 0.0, **_: Any) -> Iterator[Harness]:
    """The model connector on a transformers reward model directory (tiny, built from a config)."""
    import tempfile
    from pathlib import Path

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from service.reward.modeling import minilm_path

    with tempfile.TemporaryDirectory(prefix="cb-model-dir-") as tmp:
        torch.manual_seed(0)
        model_dir = Path(tmp) / "tiny-rm"
        config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            num_labels=1, vocab_size=30522)
        BertForSequenceClassification(config).save_pretrained(model_dir)
        AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(model_dir)
        yield Harness("model", {"options": {"model_dir": str(model_dir), "state_dir": str(Path(tmp) / "state"),
                                            "page_size": 2}}, None, wire=False, vendor_faults=False, timeout_s=20)


FACTORIES["model_dir"] = model_from_dir
