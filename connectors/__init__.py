"""Vendor connectors: one protocol (``connectors.base``), a registry, and one module per vendor."""

from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    Connector,
    JudgmentKind,
    MalformedRecord,
    ResultPage,
    TaskSpec,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
)
from connectors.errors import (
    ConnectorError,
    CrowdbridgeError,
    RateLimited,
    UnknownVendor,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)
from connectors.registry import available, get_connector_class, register

__all__ = [
    "BatchRequest",
    "BatchState",
    "Capabilities",
    "Connector",
    "ConnectorError",
    "CrowdbridgeError",
    "JudgmentKind",
    "MalformedRecord",
    "RateLimited",
    "ResultPage",
    "TaskSpec",
    "UnknownVendor",
    "VendorAuthError",
    "VendorBatchRef",
    "VendorBatchStatus",
    "VendorJudgment",
    "VendorRejected",
    "VendorUnavailable",
    "available",
    "get_connector_class",
    "register",
]
