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
