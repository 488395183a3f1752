"""Verifying vendor callbacks, each vendor's own way, in constant time.

=================  =========================================================================
Scale              header ``scale-callback-auth`` equals the account's static callback key
Toloka             ``Toloka-Signature: {"v": 1, "ts": <ms>, "sign": hex HMAC-SHA256(secret,
                   "<ts>.<v>.<raw body>")}`` (may also arrive as ``v=1,ts=...,sign=...``)
Prolific           ``X-Prolific-Request-Signature`` = base64 HMAC-SHA256(secret, timestamp + body),
                   ``X-Prolific-Request-Timestamp``
Argilla            Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``
                   = ``v1,<base64 HMAC-SHA256(secret, "<id>.<ts>.<body>")>`` (space-separated list);
                   the secret is ``whsec_<base64 key>``
Label Studio       unsigned: only the static headers registered with the hook (compared here);
                   deliveries are best-effort hints
=================  =========================================================================

Every check uses :func:`hmac.compare_digest`; signed timestamps older or newer than
``tolerance_s`` (default 5 minutes) are refused, which bounds replays. Each ``verify_*`` raises
:class:`~connectors.errors.WebhookRejected` (never says which part was wrong beyond a short
reason, never echoes a secret) and returns None on success. The ``sign_*`` helpers produce the
same headers, for fakes and tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from connectors.errors import WebhookRejected

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "header",
    "sign_prolific",
    "sign_standard_webhook",
    "sign_toloka",
    "verify_prolific",
    "verify_scale",
    "verify_standard_webhook",
    "verify_static_header",
    "verify_toloka",
]

DEFAULT_TOLERANCE_S = 300.0


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup over any mapping (Starlette, httpx, a plain dict)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _reject(vendor: str, reason: str) -> WebhookRejected:
    return WebhookRejected(f"{vendor} webhook rejected: {reason}", vendor=vendor)


def _equal(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def _check_time(vendor: str, ts_s: float, tolerance_s: float, now: float | None) -> None:
    now = time.time() if now is None else now
    if abs(now - ts_s) > tolerance_s:
        raise _reject(vendor, f"timestamp outside the {tolerance_s:.0f}s tolerance")


def verify_static_header(headers: Mapping[str, str], name: str, secret: str, *, vendor: str) -> None:
    """A static shared secret in a header (Scale; the headers Label Studio hooks were registered with)."""
    got = header(headers, name)
    if not secret:
        raise _reject(vendor, "no secret configured")
    if got is None or not _equal(got, secret):
        raise _reject(vendor, f"missing or wrong {name}")


def verify_scale(headers: Mapping[str, str], callback_key: str) -> None:
    """Scale: ``scale-callback-auth`` must equal the Live Callback Auth Key. Re-fetch the task anyway."""
    verify_static_header(headers, "scale-callback-auth", callback_key, vendor="scale")


def _toloka_fields(value: str) -> dict[str, str]:
    value = value.strip()
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
    fields = {}
    for part in value.split(","):
        key, _, val = part.strip().partition("=")
        fields[key.strip()] = val.strip()
    return fields


def sign_toloka(secret: str, body: bytes, *, ts_ms: int | None = None, version: int = 1) -> str:
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    message = f"{ts_ms}.{version}.".encode() + body
    sign = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return json.dumps({"v": version, "ts": ts_ms, "sign": sign}, separators=(",", ":"))


def verify_toloka(headers: Mapping[str, str], body: bytes, secret: str, *,
                  tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> None:
    value = header(headers, "Toloka-Signature")
    if not secret:
        raise _reject("toloka", "no secret configured")
    if value is None:
        raise _reject("toloka", "missing Toloka-Signature")
    fields = _toloka_fields(value)
    try:
        version, ts_ms, sign = int(fields["v"]), int(fields["ts"]), fields["sign"]
    except (KeyError, ValueError):
        raise _reject("toloka", "unreadable Toloka-Signature") from None
    _check_time("toloka", ts_ms / 1000.0, tolerance_s, now)
    expected = hmac.new(secret.encode(), f"{ts_ms}.{version}.".encode() + body, hashlib.sha256).hexdigest()
    if not _equal(sign.lower(), expected):
        raise _reject("toloka", "signature mismatch")


def sign_prolific(secret: str, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {"X-Prolific-Request-Signature": base64.b64encode(digest).decode(),
            "X-Prolific-Request-Timestamp": timestamp}


def _seconds(value: str) -> float:
    stamp = float(value)
    return stamp / 1000.0 if stamp > 1e11 else stamp  # tolerate milliseconds


def verify_prolific(headers: Mapping[str, str], body: bytes, secret: str, *,
                    tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> None:
    signature = header(headers, "X-Prolific-Request-Signature")
    timestamp = header(headers, "X-Prolific-Request-Timestamp")
    if not secret:
        raise _reject("prolific", "no secret configured")
    if not signature or not timestamp:
        raise _reject("prolific", "missing signature or timestamp header")
    try:
        _check_time("prolific", _seconds(timestamp), tolerance_s, now)
    except ValueError:
        raise _reject("prolific", "unreadable timestamp") from None
    expected = base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest())
    if not _equal(signature.strip(), expected):
        raise _reject("prolific", "signature mismatch")


def _standard_key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        return raw.encode()


def sign_standard_webhook(secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(_standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def verify_standard_webhook(headers: Mapping[str, str], body: bytes, secret: str, *, vendor: str = "argilla",
                            tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> None:
    """Standard Webhooks (standardwebhooks.com), as Argilla signs its deliveries."""
    msg_id = header(headers, "webhook-id")
    timestamp = header(headers, "webhook-timestamp")
    signatures = header(headers, "webhook-signature")
    if not secret:
        raise _reject(vendor, "no secret configured")
    if not msg_id or not timestamp or not signatures:
        raise _reject(vendor, "missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(timestamp)
    except ValueError:
        raise _reject(vendor, "unreadable webhook-timestamp") from None
    _check_time(vendor, float(ts), tolerance_s, now)
    expected = base64.b64encode(hmac.new(_standard_key(secret), f"{msg_id}.{ts}.".encode() + body,
                                         hashlib.sha256).digest())
    ok = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and _equal(value, expected):
            ok = True  # keep comparing: no early exit that would time which candidate matched
    if not ok:
        raise _reject(vendor, "signature mismatch")
