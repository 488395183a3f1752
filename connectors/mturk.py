"""Amazon Mechanical Turk through boto3: one HIT per item (HTMLQuestion), all of a batch's HITs share a HITType.

* auth: AWS SigV4 by boto3; ``api_key`` is ``<access key id>:<secret access key>`` (or the secret alone with
  ``aws_access_key_id`` in options); ``base_url`` is the endpoint (the sandbox by default in settings).
  boto3's own retries are off (one attempt): waits are the domain's to schedule, as for every connector.
* submit: ``CreateHITType`` (the same properties give back the same HITTypeId; the title carries our
  idempotency key) then, per item, ``CreateHITWithHITType`` with ``MaxAssignments`` = raters, an
  ``HTMLQuestion`` form (answer field ``choice``), ``RequesterAnnotation`` = item id and
  ``UniqueRequestToken`` = sha256(key/item)[:64]: a repeat is refused with ``AWS.MechanicalTurk.HitAlreadyExists``
  and counts as already created. ``vendor_batch_id`` = HITTypeId.
* poll: ``ListHITs`` (``NextToken`` pages), the batch's HITs by HITTypeId; a HIT is done when no
  assignment is available or pending; expired before that = cancelled.
* fetch: per HIT in creation order, ``ListAssignmentsForHIT(AssignmentStatuses=[Submitted, Approved],
  MaxResults, NextToken)``; a frontier cursor skips finished HITs. Each assignment -> ``WorkerId``,
  ``AcceptTime`` -> ``SubmitTime``, the ``choice`` from the QuestionFormAnswers XML, the HIT's ``Reward``.
* review: :meth:`approve` / :meth:`reject` (``ApproveAssignment`` / ``RejectAssignment``), or
  ``auto_approve: true`` to approve each well-formed submitted assignment as it is fetched; unreviewed
  work is auto-approved by MTurk after ``AutoApprovalDelayInSeconds``.
* cancel: ``UpdateExpirationForHIT(ExpireAt=<past>)`` for each HIT still open. Webhooks: none over HTTP
  (MTurk notifies through SQS/SNS, authenticated by AWS), so polling only.
"""

from __future__ import annotations

import hashlib
import html
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import httpx

from connectors._paging import Frontier
from connectors.base import (
    BatchRequest,
    BatchState,
    Capabilities,
    JudgmentKind,
    MalformedRecord,
    ResultPage,
    VendorBatchRef,
    VendorBatchStatus,
    VendorJudgment,
    response_letter,
)
from connectors.errors import RateLimited, VendorAuthError, VendorRejected, VendorUnavailable
from connectors.http import parse_retry_after
from connectors.mapping import as_utc, malformed, option_labels

__all__ = ["MTurkConnector", "html_question", "parse_answer"]

SANDBOX = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
HTML_SCHEMA = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
AUTH_CODES = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
              "MissingAuthenticationTokenException", "ExpiredTokenException"}
THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}


def html_question(req: BatchRequest, index: int) -> str:
    """The HIT's HTMLQuestion: the item and a form that posts ``choice`` to MTurk's externalSubmit."""
    task = req.tasks[index]
    parts = [f"<h3>Prompt</h3><pre>{html.escape(task.prompt)}</pre>"]
    parts += [f"<h3>Response {response_letter(i)}</h3><pre>{html.escape(r)}</pre>" for i, r in enumerate(task.responses)]
    if req.kind is JudgmentKind.ranking:
        letters = ">".join(response_letter(i) for i in range(len(task.responses)))
        field = f'<p>Rank best first, e.g. {letters}</p><input name="choice" required>'
    else:
        field = "".join(f'<label><input type="radio" name="choice" value="{v}" required> {html.escape(k)}</label>'
                        for k, v in option_labels(req.kind, req.rating_scale).items())
    body = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><script src="https://assets.crowd.aws/'
            f'crowd-html-elements.js"></script></head><body data-kind="{req.kind.value}" '
            f'data-responses="{len(task.responses)}" data-scale="{req.rating_scale}">'
            f'<p>{html.escape(req.instructions or "Which response is better?")}</p>{"".join(parts)}'
            f'<form name="mturk_form" method="post" id="mturk_form" action="https://www.mturk.com/mturk/externalSubmit">'
            f'<input type="hidden" name="assignmentId" id="assignmentId" value="">{field}'
            f'<input type="submit" value="Submit"></form>'
            f'<script>document.getElementById("assignmentId").value = new URLSearchParams(location.search)'
            f'.get("assignmentId") || "";</script></body></html>')
    return (f'<HTMLQuestion xmlns="{HTML_SCHEMA}"><HTMLContent><![CDATA[{body}]]></HTMLContent>'
            f'<FrameHeight>0</FrameHeight></HTMLQuestion>')


def parse_answer(xml_text: str) -> dict[str, str]:
    """QuestionFormAnswers XML -> {QuestionIdentifier: FreeText}. ValueError when it is not that XML."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"Answer is not XML: {exc}") from None
    out = {}
    for answer in root.iter():
        if answer.tag.rsplit("}", 1)[-1] != "Answer":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in answer}
        if "QuestionIdentifier" in fields:
            out[fields["QuestionIdentifier"]] = fields.get("FreeText", "")
    return out


class MTurkConnector:
    name: ClassVar[str] = "mturk"
    capabilities: ClassVar[Capabilities] = Capabilities(
        per_rater_identity=True, webhooks=False, idempotent_submit=True, cancel=True, cost=True)

    def __init__(self, client: Any, *, lifetime_s: int = 3 * 24 * 3600, assignment_s: int = 1800,
                 auto_approval_delay_s: int = 3 * 24 * 3600, auto_approve: bool = False, page_size: int = 100,
                 hits_per_fetch: int = 25) -> None:
        self._mturk = client
        self._lifetime = lifetime_s
        self._assignment_s = assignment_s
        self._auto_delay = auto_approval_delay_s
        self._auto_approve = auto_approve
        self._page_size = min(page_size, 100)
        self._per_fetch = hits_per_fetch

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     transport: httpx.BaseTransport | None = None) -> MTurkConnector:
        client = options.get("client")  # an already built boto3 client (tests with botocore's Stubber)
        if client is None:
            import boto3
            from botocore.config import Config

            secret = str(options.get("api_key") or "")
            key_id = options.get("aws_access_key_id")
            if key_id is None and ":" in secret:
                key_id, secret = secret.split(":", 1)
            timeout = float(options.get("timeout_s", 30.0))
            client = boto3.session.Session().client(
                "mturk", region_name="us-east-1", endpoint_url=options.get("base_url") or SANDBOX,
                aws_access_key_id=key_id or None, aws_secret_access_key=secret or None,
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=timeout))
        return cls(client, lifetime_s=int(options.get("lifetime_s", 3 * 24 * 3600)),
                   assignment_s=int(options.get("assignment_s", 1800)),
                   auto_approval_delay_s=int(options.get("auto_approval_delay_s", 3 * 24 * 3600)),
                   auto_approve=bool(options.get("auto_approve", False)), page_size=int(options.get("page_size", 100)),
                   hits_per_fetch=int(options.get("hits_per_fetch", 25)))

    # -- the one place boto3 errors become ours ------------------------------------------------------------

    def _call(self, operation: str, batch_id: str | None = None, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._mturk, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            headers = (exc.response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
            message = f"mturk: {operation} -> {status} {code}: {str(error.get('Message') or '')[:200]}"
            if status == 429 or code in THROTTLE_CODES:
                raise RateLimited(message, vendor=self.name, batch_id=batch_id,
                                  retry_after=parse_retry_after(headers.get("retry-after"))) from exc
            if status >= 500 or code == "ServiceFault":
                raise VendorUnavailable(message, vendor=self.name, batch_id=batch_id) from exc
            if status in (401, 403) or code in AUTH_CODES:
                raise VendorAuthError(message, vendor=self.name, batch_id=batch_id) from exc
            raise VendorRejected(message, vendor=self.name, batch_id=batch_id) from exc
        except BotoCoreError as exc:  # connection refused, timeouts, bad endpoint
            raise VendorUnavailable(f"mturk: {operation} failed: {type(exc).__name__}", vendor=self.name,
                                    batch_id=batch_id) from exc

    @staticmethod
    def _already_exists(exc: VendorRejected) -> bool:
        cause = exc.__cause__
        response = getattr(cause, "response", {}) or {}
        return "HitAlreadyExists" in f"{response.get('TurkErrorCode', '')} {response.get('Error', {}).get('Message', '')}"

    # -- the five verbs ------------------------------------------------------------------------------------

    def submit_batch(self, req: BatchRequest) -> VendorBatchRef:
        reward = f"{max(0.01, req.reward_per_judgment):.2f}"
        hit_type = self._call("create_hit_type", req.batch_id,
                              AutoApprovalDelayInSeconds=self._auto_delay,
                              AssignmentDurationInSeconds=self._assignment_s, Reward=reward,
                              Title=f"Compare AI responses [{req.idempotency_key[:60]}]",
                              Keywords="ai, comparison, rlhf, crowdbridge",
                              Description=(req.instructions or "Which response is better?")[:1900])["HITTypeId"]
        created = False
        for index, task in enumerate(req.tasks):
            token = hashlib.sha256(f"{req.idempotency_key}/{task.item_id}".encode()).hexdigest()[:64]
            try:
                self._call("create_hit_with_hit_type", req.batch_id, HITTypeId=hit_type,
                           MaxAssignments=req.raters_per_item, LifetimeInSeconds=self._lifetime,
                           Question=html_question(req, index), RequesterAnnotation=task.item_id[:255],
                           UniqueRequestToken=token)
                created = True
            except VendorRejected as exc:
                if not self._already_exists(exc):
                    raise
        return VendorBatchRef(vendor=self.name, vendor_batch_id=hit_type, created=created)

    def _hits(self, hit_type: str) -> list[dict[str, Any]]:
        out, token = [], None
        while True:
            page = self._call("list_hits", MaxResults=100, **({"NextToken": token} if token else {}))
            out += [h for h in page.get("HITs") or [] if h.get("HITTypeId") == hit_type]
            token = page.get("NextToken")
            if not token or not page.get("HITs"):
                return sorted(out, key=lambda h: (as_utc(h["CreationTime"]), h["HITId"]))

    @staticmethod
    def _done(hit: Mapping[str, Any]) -> int:
        return int(hit["MaxAssignments"]) - int(hit.get("NumberOfAssignmentsAvailable") or 0) - int(
            hit.get("NumberOfAssignmentsPending") or 0)

    @staticmethod
    def _expired(hit: Mapping[str, Any]) -> bool:
        return as_utc(hit["Expiration"]) <= datetime.now(timezone.utc)

    def poll(self, ref: VendorBatchRef) -> VendorBatchStatus:
        hits = self._hits(ref.vendor_batch_id)
        expected = sum(int(h["MaxAssignments"]) for h in hits)
        done = sum(self._done(h) for h in hits)
        if hits and done >= expected:
            state = BatchState.completed
        elif hits and all(self._expired(h) or self._done(h) >= int(h["MaxAssignments"]) for h in hits):
            state = BatchState.cancelled
        else:
            state = BatchState.in_progress if hits else BatchState.pending
        return VendorBatchStatus(state=state, tasks_total=len(hits), judgments_expected=expected, judgments_done=done)

    def fetch_judgments(self, ref: VendorBatchRef, cursor: str | None) -> ResultPage:
        hits = self._hits(ref.vendor_batch_id)
        state = Frontier.load(cursor)
        judgments: list[VendorJudgment] = []
        bad: list[MalformedRecord] = []
        reads = 0
        while state.position < len(hits) and reads < self._per_fetch:
            hit = hits[state.position]
            page = self._call("list_assignments_for_hit", HITId=hit["HITId"], MaxResults=self._page_size,
                              AssignmentStatuses=["Submitted", "Approved"],
                              **({"NextToken": state.token} if state.token else {}))
            reads += 1
            for assignment in page.get("Assignments") or []:
                parsed = self.parse_assignment(hit, assignment)
                if isinstance(parsed, VendorJudgment):
                    judgments.append(parsed)
                    if self._auto_approve and assignment.get("AssignmentStatus") == "Submitted":
                        self.approve(str(assignment["AssignmentId"]))
                else:
                    bad.append(parsed)
            if page.get("NextToken"):
                state.token = page["NextToken"]
                continue
            state.item_done(state.position, self._done(hit) >= int(hit["MaxAssignments"]) or self._expired(hit))
        more = state.position < len(hits)
        if not more:
            state.restart()
        return ResultPage(judgments=tuple(judgments), malformed=tuple(bad), cursor=state.dump(), has_more=more)

    @staticmethod
    def parse_assignment(hit: Mapping[str, Any], assignment: Any) -> VendorJudgment | MalformedRecord:
        def plain(value: Any) -> Any:
            return as_utc(value).isoformat() if isinstance(value, datetime) else value

        raw = {k: plain(v) for k, v in assignment.items()} if isinstance(assignment, dict) else {"value": assignment}
        raw["RequesterAnnotation"] = hit.get("RequesterAnnotation")
        if not isinstance(assignment, dict) or not assignment.get("AssignmentId") or not assignment.get("WorkerId"):
            return malformed(raw, "assignment has no AssignmentId or no WorkerId")
        try:
            choice = parse_answer(str(assignment.get("Answer") or "")).get("choice", "").strip()
        except ValueError as exc:
            return malformed(raw, str(exc))
        if not choice or not hit.get("RequesterAnnotation"):
            return malformed(raw, "the answer has no 'choice' or the HIT no RequesterAnnotation (item id)")
        submitted = assignment.get("SubmitTime")
        if not isinstance(submitted, datetime):
            return malformed(raw, "assignment has no SubmitTime")
        accepted = assignment.get("AcceptTime")
        try:
            cost = float(hit["Reward"]) if hit.get("Reward") is not None else None
        except (TypeError, ValueError):
            cost = None
        return VendorJudgment(vendor_judgment_id=f"mturk:{assignment['AssignmentId']}",
                              item_id=str(hit["RequesterAnnotation"]), rater_id=f"mturk:{assignment['WorkerId']}",
                              label=choice, submitted_at=as_utc(submitted),
                              started_at=as_utc(accepted) if isinstance(accepted, datetime) else None, cost=cost,
                              raw=raw)

    def cancel(self, ref: VendorBatchRef) -> None:
        for hit in self._hits(ref.vendor_batch_id):
            if not self._expired(hit) and self._done(hit) < int(hit["MaxAssignments"]):
                self._call("update_expiration_for_hit", HITId=hit["HITId"], ExpireAt=datetime(2015, 1, 1,
                                                                                              tzinfo=timezone.utc))

    # -- review -----------------------------------------------------------------------------------------

    def approve(self, assignment_id: str, feedback: str | None = None) -> None:
        self._call("approve_assignment", AssignmentId=assignment_id, **({"RequesterFeedback": feedback}
                                                                        if feedback else {}))

    def reject(self, assignment_id: str, feedback: str) -> None:
        self._call("reject_assignment", AssignmentId=assignment_id, RequesterFeedback=feedback)
