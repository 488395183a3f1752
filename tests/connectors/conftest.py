"""Session fixtures for connector tests: the live Label Studio server (installed once, cached)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from service.processes import free_port
from tests.connectors import harnesses


@pytest.fixture(scope="session")
def label_studio_server() -> Iterator[Any]:
    """A real Label Studio on 127.0.0.1, installed into ~/.cache/crowdbridge/label-studio-venv on first use.

    Fails loudly when it cannot be installed or started; ``CROWDBRIDGE_SKIP_LABEL_STUDIO=1`` turns that
    into a skip with the same reason.
    """
    from connectors.label_studio.local import LabelStudioUnavailable, default_cache_dir, ensure_local_server

    if os.environ.get("CROWDBRIDGE_SKIP_LABEL_STUDIO") == "1":
        harnesses.LS_SERVER["why"] = "CROWDBRIDGE_SKIP_LABEL_STUDIO=1"
        pytest.skip("CROWDBRIDGE_SKIP_LABEL_STUDIO=1: live Label Studio tests skipped")
    try:
        port = int(os.environ.get("CROWDBRIDGE_LABEL_STUDIO_PORT") or free_port())  # reuse one running there
        server = ensure_local_server(default_cache_dir(), port,
                                     data_dir=default_cache_dir() / "label-studio-test-data")
    except LabelStudioUnavailable as exc:
        pytest.fail(f"Label Studio could not be installed or started (set CROWDBRIDGE_SKIP_LABEL_STUDIO=1 to "
                    f"skip these tests): {exc}", pytrace=False)
    harnesses.LS_SERVER["server"] = server
    try:
        yield server
    finally:
        harnesses.LS_SERVER.pop("server", None)
        server.stop()


@pytest.fixture
def vendor_harness(request: pytest.FixtureRequest) -> Any:
    """Parametrized by vendor name; pulls in the Label Studio server only for label_studio."""
    if request.param == "label_studio":
        request.getfixturevalue("label_studio_server")
    return harnesses.FACTORIES[request.param]
