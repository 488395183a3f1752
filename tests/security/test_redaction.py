"""PII never leaves for a vendor, and what was redacted is on record."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from service.domain.batches import batch_request
from service.domain.campaigns import CampaignSpec, add_items, create_campaign, plan_batches
from service.domain.redaction import Redactor
from service.settings import Settings
from service.storage.db import migrate, session_scope
from service.storage.models import JudgmentKind, RedactionRecord

SECRETS = {
    "EMAIL": "jane.doe+rlhf@example.co.uk",
    "PHONE": "+1 415-555-0199",
    "API_KEY": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e",
    "TOKEN": "Bearer abcDEF123456ghiJKL789mnoPQR",
    "CARD": "4111 1111 1111 1111",
}


@pytest.mark.parametrize(("kind", "secret"), SECRETS.items())
def test_each_kind_is_redacted_and_recorded_by_digest(kind: str, secret: str) -> None:
    text, record = Redactor().redact(f"please contact {secret} today")
    leaked = secret.split(" ", 1)[1] if kind == "TOKEN" else secret
    assert leaked not in text and f"[REDACTED:{kind}]" in text
    assert record.counts == {kind: 1}
    assert record.digests[0] == hashlib.sha256(leaked.encode()).hexdigest()


def test_numbers_that_are_not_cards_survive_and_custom_patterns_apply() -> None:
    text, record = Redactor({"employee_id": r"EMP-\d{6}"}).redact("order 1234 5678 9012 3456 by EMP-004211")
    assert "1234 5678 9012 3456" in text  # fails the Luhn check: not a card
    assert "[REDACTED:EMPLOYEE_ID]" in text and record.counts == {"EMPLOYEE_ID": 1}


def test_disabled_redactor_changes_nothing() -> None:
    assert Redactor(enabled=False).redact(SECRETS["EMAIL"]) == (SECRETS["EMAIL"], Redactor().redact("")[1])


@given(st.text(max_size=300))
def test_redaction_is_idempotent_and_never_crashes(text: str) -> None:
    once, _ = Redactor().redact(text)
    twice, record = Redactor().redact(once)
    assert twice == once and not record


def test_batch_request_sends_redacted_text_and_records_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'cb.db'}")
    migrate(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as s:
        campaign = create_campaign(s, CampaignSpec(name="pii", kind=JudgmentKind.pairwise))
        add_items(s, campaign, [{"id": "1", "prompt": f"My email is {SECRETS['EMAIL']}, card {SECRETS['CARD']}",
                                 "responses": [f"Call {SECRETS['PHONE']}", "No."]},
                                {"id": "2", "prompt": "Nothing private here", "responses": ["a", "b"]}])
        batch = plan_batches(s, settings, campaign, [i.id for i in campaign_items(s, campaign.id)],
                             raters_per_item=1)[0]
        request = batch_request(s, batch, campaign, settings)
        again = batch_request(s, batch, campaign, settings)  # a retry records nothing twice
        s.commit()
        records = s.exec(select(RedactionRecord).where(RedactionRecord.batch_id == batch.id)).all()
    sent = " ".join([t.prompt for t in request.tasks] + [r for t in request.tasks for r in t.responses])
    assert all(secret not in sent for secret in (SECRETS["EMAIL"], SECRETS["CARD"], SECRETS["PHONE"]))
    assert request == again
    assert len(records) == 1 and records[0].counts == {"EMAIL": 1, "CARD": 1, "PHONE": 1}


def campaign_items(s, campaign_id: uuid.UUID):  # type: ignore[no-untyped-def]
    from service.storage.models import Item

    return s.exec(select(Item).where(Item.campaign_id == campaign_id).order_by(Item.external_id)).all()


