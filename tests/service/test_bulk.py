"""bulk_insert on both databases: rows without an id get new ones, conflicts are skipped and not counted."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from service.storage.bulk import bulk_insert
from service.storage.models import AgreementReport, Campaign, JudgmentKind, QuarantinedPayload
from service.storage.types import utcnow
from tests.support import schema_session


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    with schema_session(request.param) as s:
        yield s


def _payload(n: int) -> dict[str, object]:
    return {"vendor": "v", "source": "poll", "reason": f"bad {n}", "raw": "{}", "fingerprint": f"f{n}",
            "received_at": utcnow()}


def test_rows_without_an_id_get_new_distinct_ones(session: Session) -> None:
    inserted = bulk_insert(session, QuarantinedPayload.__table__, [_payload(i) for i in range(50)],
                           on_conflict=["vendor", "fingerprint"], returning="id")
    session.commit()
    ids = session.exec(select(QuarantinedPayload.id)).all()
    assert inserted == 50
    assert len(set(ids)) == 50 and all(uuid.UUID(str(i)).version == 4 for i in ids)


def test_conflicts_are_skipped_and_not_counted(session: Session) -> None:
    bulk_insert(session, QuarantinedPayload.__table__, [_payload(i) for i in range(5)],
                on_conflict=["vendor", "fingerprint"], returning="id")
    again = bulk_insert(session, QuarantinedPayload.__table__, [_payload(i) for i in range(3, 8)],
                        on_conflict=["vendor", "fingerprint"], returning="id")
    session.commit()
    assert again == 3
    assert len(session.exec(select(QuarantinedPayload.id)).all()) == 8


def test_rows_json_cannot_carry_still_get_ids(session: Session) -> None:
    """A NaN goes through COPY on PostgreSQL (JSON has no NaN): the new ids are made there too."""
    campaign = Campaign(name="c", kind=JudgmentKind.pairwise, raters_per_item=1)
    session.add(campaign)
    session.flush()
    rows = [{"campaign_id": campaign.id, "scope": "campaign", "scope_key": "k", "metric": "m", "value": v, "n": 1,
             "details": {}, "computed_at": utcnow()} for v in (math.nan, 0.5)]
    assert bulk_insert(session, AgreementReport.__table__, rows) == 2
    session.commit()
    stored = session.exec(select(AgreementReport.id, AgreementReport.value)).all()
    assert len({i for i, _ in stored}) == 2
    if session.get_bind().dialect.name == "postgresql":  # SQLite reads a stored NaN back as NULL
        assert any(v is not None and math.isnan(v) for _, v in stored)
