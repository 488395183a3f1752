"""Errors a connector raises. The root of crowdbridge's error tree lives here, in the
lowest layer, so that connectors can raise it without importing ``service``.

    CrowdbridgeError
      ConnectorError(vendor)
        VendorUnavailable   timeouts, connection errors, 5xx       retryable
        RateLimited         429, carries ``retry_after`` seconds   retryable
        VendorAuthError     401/403                                fix credentials
        VendorRejected      other 4xx, validation                  fix the input
        UnknownVendor       nobody registered that name
        DuplicateVendor     a name registered twice
        WebhookRejected     a callback whose signature/secret/timestamp did not verify

``service/errors.py`` extends the tree with the domain's own errors.
"""

from __future__ import annotations

__all__ = [
    "ConnectorError",
    "CrowdbridgeError",
    "DuplicateVendor",
    "RateLimited",
    "UnknownVendor",
    "VendorAuthError",
    "VendorRejected",
    "VendorUnavailable",
    "WebhookRejected",
]


class CrowdbridgeError(Exception):
    """Root of every error crowdbridge raises on purpose. ``code`` is stable for API clients."""

    code = "crowdbridge_error"
    retryable = False


class ConnectorError(CrowdbridgeError):
    code = "vendor_error"

    def __init__(self, message: str, *, vendor: str, batch_id: str | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.batch_id = batch_id


class VendorUnavailable(ConnectorError):
    code = "vendor_unavailable"
    retryable = True


class RateLimited(ConnectorError):
    code = "vendor_rate_limited"
    retryable = True

    def __init__(self, message: str, *, vendor: str, retry_after: float, batch_id: str | None = None) -> None:
        super().__init__(message, vendor=vendor, batch_id=batch_id)
        self.retry_after = retry_after


class VendorAuthError(ConnectorError):
    code = "vendor_auth"


class VendorRejected(ConnectorError):
    code = "vendor_rejected"


class UnknownVendor(ConnectorError):
    code = "unknown_vendor"


class DuplicateVendor(ConnectorError):
    code = "duplicate_vendor"


class WebhookRejected(ConnectorError):
    """A callback that did not verify; answer it 401 and do not act on it."""

    code = "webhook_rejected"
