"""Bad input never crashes: random payloads through every connector's record parser, and random
item uploads, end in a stored judgment, a quarantinable record, or a named error - nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.appen import AppenConnector
from connectors.argilla import ArgillaConnector
from connectors.base import MalformedRecord, VendorJudgment
from connectors.file import FileConnector
from connectors.label_studio.client import LabelStudioConnector
from connectors.mturk import MTurkConnector
from connectors.prolific import ProlificConnector
from connectors.scale import ScaleConnector
from connectors.simulated.client import parse_judgment
from connectors.surge import SurgeConnector
from connectors.toloka import TolokaConnector
from service.domain.campaigns import CampaignSpec, add_items, create_campaign
from service.errors import InvalidInput
from service.storage.db import migrate, session_scope
from service.storage.models import JudgmentKind

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=6), max_leaves=20)
# records shaped like the vendors' own, with fields present but values anything
field_names = st.sampled_from(["id", "task_id", "worker_id", "answer", "submitted_at", "started_at", "cost_usd",
                               "_worker_id", "data", "created_at", "completed_by", "result", "user_id", "values",
                               "solutions", "WorkerId", "Answer", "SubmitTime", "AcceptTime", "AssignmentId",
                               "response", "status", "unit_id", "completed_at", "participant", "external_id"])
records = st.dictionaries(field_names, json_values, max_size=10) | json_values

PARSERS: dict[str, Any] = {
    "simulated": lambda r, m: parse_judgment(r),
    "scale": lambda r, m: ScaleConnector.parse_task(r),
    "surge": lambda r, m: SurgeConnector.parse_response(m, m, r),
    "toloka": lambda r, m: TolokaConnector.parse_assignment(r),
    "appen": lambda r, m: AppenConnector.parse_judgment(m, r, None),
    "prolific": lambda r, m: ProlificConnector.parse_response(r, 0.1),
    "argilla": lambda r, m: ArgillaConnector.parse_response(m, r),
    "mturk": lambda r, m: MTurkConnector.parse_assignment(m, r),
    "file": lambda r, m: FileConnector.parse_row("export.jsonl", r),
    "label_studio": lambda r, m: LabelStudioConnector.parse_annotation("1", m, r),
}


@pytest.mark.parametrize("vendor", sorted(PARSERS))
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])  # reproducible in CI
@given(record=records, context=st.dictionaries(field_names, json_values, max_size=6))
def test_every_parser_returns_a_judgment_or_a_reason(vendor: str, record: Any, context: dict[str, Any]) -> None:
    parsed = PARSERS[vendor](record, context)
    assert isinstance(parsed, VendorJudgment | MalformedRecord)
    if isinstance(parsed, MalformedRecord):
        assert parsed.reason and isinstance(parsed.raw, str)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("fuzz") / "cb.db"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


item_records = st.lists(st.dictionaries(st.sampled_from(["id", "prompt", "responses", "gold", "metadata"]),
                                        json_values, max_size=5) | json_values, max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(upload=item_records, kind=st.sampled_from(list(JudgmentKind)))
def test_item_uploads_are_stored_whole_or_refused_with_a_named_error(db: str, upload: Any,
                                                                    kind: JudgmentKind) -> None:
    with session_scope(db) as s:
        campaign = create_campaign(s, CampaignSpec(name="fuzz", kind=kind))
        try:
            add_items(s, campaign, upload)
        except InvalidInput as exc:
            assert str(exc)
        s.rollback()  # leave the database as it was for the next example
