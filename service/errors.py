"""crowdbridge's one error tree. The root and the connector branch live in
``connectors.errors`` (the lowest layer); the domain's errors extend it here.

    CrowdbridgeError
      ConnectorError(vendor, batch_id)
        VendorUnavailable      timeouts, 5xx                 retryable
        RateLimited            429 + retry_after             retryable
        VendorAuthError        401/403
        VendorRejected         4xx validation
        UnknownVendor / DuplicateVendor
      ServiceError
        NotFound               (kind, key)
        InvalidTransition      (entity, from_state, to_state)
        InvalidInput           bad campaign / item upload
        BudgetExceeded
        ConfigError
    AggregationInputError      (service.aggregation; a ValueError)

Workers decide retry versus fail by ``.retryable``; the API maps ``.code`` to a status.
"""

from __future__ import annotations

from connectors.errors import (
    ConnectorError,
    CrowdbridgeError,
    DuplicateVendor,
    RateLimited,
    UnknownVendor,
    VendorAuthError,
    VendorRejected,
    VendorUnavailable,
)

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "ConnectorError",
    "CrowdbridgeError",
    "DuplicateVendor",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "UnknownVendor",
    "VendorAuthError",
    "VendorRejected",
    "VendorUnavailable",
]


class ServiceError(CrowdbridgeError):
    code = "service_error"


class NotFound(ServiceError):
    code = "not_found"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key


class InvalidTransition(ServiceError):
    code = "invalid_transition"

    def __init__(self, entity: str, from_state: str, to_state: str) -> None:
        super().__init__(f"{entity} cannot go from {from_state} to {to_state}")
        self.entity = entity
        self.from_state = from_state
        self.to_state = to_state


class InvalidInput(ServiceError):
    code = "invalid_input"


class BudgetExceeded(ServiceError):
    code = "budget_exceeded"


class ConfigError(ServiceError):
    code = "config_error"
