"""MTurk through botocore's Stubber: every request is validated against the real MTurk service model."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.stub import ANY, Stubber  # noqa: E402

from connectors.base import BatchRequest, JudgmentKind, TaskSpec, VendorBatchRef, VendorJudgment  # noqa: E402
from connectors.fakes.mturk import _answer_xml  # noqa: E402
from connectors.mturk import MTurkConnector  # noqa: E402

NOW = datetime.now(timezone.utc)


def _hit(hit_id: str, item: str) -> dict:
    return {"HITId": hit_id, "HITTypeId": "T1", "CreationTime": NOW, "MaxAssignments": 2, "Reward": "0.05",
            "RequesterAnnotation": item, "Expiration": NOW + timedelta(days=1), "NumberOfAssignmentsPending": 0,
            "NumberOfAssignmentsAvailable": 0, "NumberOfAssignmentsCompleted": 0, "HITStatus": "Reviewable"}


def _assignment(aid: str, worker: str, choice: str) -> dict:
    return {"AssignmentId": aid, "WorkerId": worker, "HITId": "H1", "AssignmentStatus": "Submitted",
            "AcceptTime": NOW - timedelta(seconds=40), "SubmitTime": NOW, "Answer": _answer_xml(choice)}


def test_submit_page_and_review_against_the_service_model() -> None:
    client = boto3.client("mturk", region_name="us-east-1", aws_access_key_id="AKIAX", aws_secret_access_key="s")
    conn = MTurkConnector.from_options({"client": client, "page_size": 1})
    req = BatchRequest(batch_id="b", idempotency_key="cb-key", campaign_id="c", kind=JudgmentKind.pairwise,
                       instructions="Pick one", raters_per_item=2, reward_per_judgment=0.05,
                       tasks=(TaskSpec("i1", "p", ("a", "b")), TaskSpec("i2", "p", ("c", "d"))))
    with Stubber(client) as stub:
        stub.add_response("create_hit_type", {"HITTypeId": "T1"}, {
            "AutoApprovalDelayInSeconds": ANY, "AssignmentDurationInSeconds": ANY, "Reward": "0.05", "Title": ANY,
            "Keywords": ANY, "Description": "Pick one"})
        stub.add_response("create_hit_with_hit_type", {"HIT": {"HITId": "H1"}}, {
            "HITTypeId": "T1", "MaxAssignments": 2, "LifetimeInSeconds": ANY, "Question": ANY,
            "RequesterAnnotation": "i1", "UniqueRequestToken": ANY})
        stub.add_client_error("create_hit_with_hit_type", "RequestError", 'The HIT with ID "H2" already exists.',
                              400, modeled_fields={"TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists"})
        ref = conn.submit_batch(req)
        assert ref == VendorBatchRef("mturk", "T1", created=True)
        stub.assert_no_pending_responses()

        # two HITs over two ListHITs pages, then H1's assignments over two NextToken pages
        stub.add_response("list_hits", {"HITs": [_hit("H1", "i1")], "NextToken": "p2"}, {"MaxResults": 100})
        stub.add_response("list_hits", {"HITs": [_hit("H2", "i2")]}, {"MaxResults": 100, "NextToken": "p2"})
        stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment("A1", "W1", "A")],
                                                       "NextToken": "n2"},
                          {"HITId": "H1", "MaxResults": 1, "AssignmentStatuses": ["Submitted", "Approved"]})
        stub.add_response("list_assignments_for_hit", {"Assignments": [_assignment("A2", "W2", "tie")]},
                          {"HITId": "H1", "MaxResults": 1, "AssignmentStatuses": ["Submitted", "Approved"],
                           "NextToken": "n2"})
        stub.add_response("list_assignments_for_hit", {"Assignments": [
            {**_assignment("A3", "W1", "B"), "Answer": "<broken"}]},
            {"HITId": "H2", "MaxResults": 1, "AssignmentStatuses": ["Submitted", "Approved"]})
        conn._per_fetch = 10
        page = conn.fetch_judgments(ref, None)
        assert [(j.rater_id, j.item_id, j.label) for j in page.judgments] == [("mturk:W1", "i1", "A"),
                                                                            ("mturk:W2", "i1", "tie")]
        assert all(isinstance(j, VendorJudgment) and j.cost == 0.05 for j in page.judgments)
        assert len(page.malformed) == 1 and "not XML" in page.malformed[0].reason and not page.has_more

        stub.add_response("approve_assignment", {}, {"AssignmentId": "A1"})
        stub.add_response("reject_assignment", {}, {"AssignmentId": "A3", "RequesterFeedback": "unreadable answer"})
        conn.approve("A1")
        conn.reject("A3", "unreadable answer")
        stub.assert_no_pending_responses()
