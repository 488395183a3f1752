"""The package's public names, and every built-in connector registered with its capabilities."""

from __future__ import annotations

import connectors
from connectors.base import Capabilities
from connectors.registry import BUILTINS, available, get_connector_class

ALL = {"simulated", "label_studio", "scale", "appen", "surge", "toloka", "mturk", "prolific", "argilla", "file",
       "model"}


def test_exported_names() -> None:
    assert set(connectors.__all__) == {
        "BUILTINS", "BatchRequest", "BatchState", "Capabilities", "Connector", "ConnectorError", "CrowdbridgeError",
        "JudgmentKind", "MalformedRecord", "RateLimited", "ResultPage", "TaskSpec", "UnknownVendor",
        "VendorAuthError", "VendorBatchRef", "VendorBatchStatus", "VendorJudgment", "VendorRejected",
        "VendorUnavailable", "WebhookEvent", "WebhookReceiver", "WebhookRejected", "available",
        "get_connector_class", "register"}
    for name in connectors.__all__:
        assert getattr(connectors, name) is not None


def test_every_builtin_loads_and_declares_capabilities() -> None:
    assert ALL <= set(BUILTINS) and ALL <= set(available())
    for name in ALL:
        cls = get_connector_class(name)
        assert cls.name == name
        assert isinstance(cls.capabilities, Capabilities)
        for verb in ("from_options", "submit_batch", "poll", "fetch_judgments", "cancel"):
            assert callable(getattr(cls, verb)), (name, verb)
    assert not get_connector_class("scale").capabilities.per_rater_identity
