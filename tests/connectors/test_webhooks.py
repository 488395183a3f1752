"""Callback verification, each vendor's way: good deliveries pass, tampered/stale/unsigned ones do not."""

from __future__ import annotations

import time

import pytest

from connectors.errors import WebhookRejected
from connectors.webhooks import (
    sign_prolific,
    sign_standard_webhook,
    sign_toloka,
    verify_prolific,
    verify_scale,
    verify_standard_webhook,
    verify_toloka,
)

BODY = b'{"events":[{"type":"ASSIGNMENT_SUBMITTED"}]}'


def test_scale_static_key() -> None:
    verify_scale({"Scale-Callback-Auth": "live-key"}, "live-key")
    for headers in ({}, {"scale-callback-auth": "other"}):
        with pytest.raises(WebhookRejected):
            verify_scale(headers, "live-key")
    with pytest.raises(WebhookRejected):
        verify_scale({"scale-callback-auth": ""}, "")  # no secret configured never verifies


def test_toloka_signature_json_and_kv_forms() -> None:
    header = sign_toloka("sec", BODY)
    verify_toloka({"Toloka-Signature": header}, BODY, "sec")
    import json

    fields = json.loads(header)
    verify_toloka({"toloka-signature": f"v={fields['v']},ts={fields['ts']},sign={fields['sign']}"}, BODY, "sec")
    for bad in (BODY + b" ", b"{}"):
        with pytest.raises(WebhookRejected, match="mismatch"):
            verify_toloka({"Toloka-Signature": header}, bad, "sec")
    stale = sign_toloka("sec", BODY, ts_ms=int((time.time() - 3600) * 1000))
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_toloka({"Toloka-Signature": stale}, BODY, "sec")
    with pytest.raises(WebhookRejected):
        verify_toloka({"Toloka-Signature": header}, BODY, "other-secret")


def test_prolific_signature_with_timestamp() -> None:
    headers = sign_prolific("psec", BODY)
    verify_prolific(headers, BODY, "psec")
    with pytest.raises(WebhookRejected):
        verify_prolific(headers, BODY + b"x", "psec")
    old = sign_prolific("psec", BODY, timestamp=str(int(time.time()) - 1000))
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_prolific(old, BODY, "psec")
    with pytest.raises(WebhookRejected):
        verify_prolific({"X-Prolific-Request-Signature": headers["X-Prolific-Request-Signature"]}, BODY, "psec")


def test_standard_webhooks_as_argilla_signs() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = sign_standard_webhook(secret, "msg_1", BODY)
    verify_standard_webhook(headers, BODY, secret)
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    verify_standard_webhook(rotated, BODY, secret)  # any listed v1 signature may match
    with pytest.raises(WebhookRejected):
        verify_standard_webhook({**headers, "webhook-id": "msg_2"}, BODY, secret)
    with pytest.raises(WebhookRejected, match="tolerance"):
        verify_standard_webhook(sign_standard_webhook(secret, "m", BODY, timestamp=int(time.time()) - 900), BODY,
                                secret)


def test_delivery_key_is_the_vendors_delivery_id_else_the_body_digest() -> None:
    from connectors.base import WebhookEvent
    from service.domain.webhooks import delivery_key

    with_id = [WebhookEvent(vendor="prolific", kind="x", event_id="evt-1"), WebhookEvent(vendor="prolific", kind="y")]
    assert delivery_key(with_id, b"{}") == "id:evt-1"
    assert delivery_key([WebhookEvent(vendor="scale", kind="x")], b"{}") == delivery_key([], b"{}") != \
        delivery_key([], b"{ }")
