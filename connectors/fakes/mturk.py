"""A fake of the MTurk requester API (``mturk-requester`` 2017-01-17, AWS JSON 1.1 protocol) for boto3.

One ``POST /`` endpoint dispatching on ``X-Amz-Target: MTurkRequesterServiceV20170117.<Operation>``; the
request must carry a SigV4 ``Authorization`` for the fake's access key id (else 400
``UnrecognizedClientException``). Errors are ``{"__type": "RequestError"|"ServiceFault", "Message",
"TurkErrorCode"}``; timestamps are epoch seconds, as the service model says. Operations: CreateHITType
(same properties -> same HITTypeId), CreateHITWithHITType (``UniqueRequestToken`` -> 
``AWS.MechanicalTurk.HitAlreadyExists`` on reuse), ListHITs, GetHIT, ListAssignmentsForHIT
(``MaxResults`` <= 100, ``NextToken``), ApproveAssignment, RejectAssignment, UpdateExpirationForHIT,
GetAccountBalance. A HIT's kind is read from the ``data-kind`` of crowdbridge's HTMLQuestion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors.fakes.common import Crowd, FakeVendor, Work, install_controls, plan_work

__all__ = ["ACCESS_KEY_ID", "create_app"]

ACCESS_KEY_ID = "AKIAFAKEMTURK0000001"
TARGET = "MTurkRequesterServiceV20170117."
ANSWER_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"


def _answer_xml(choice: str) -> str:
    return (f'<?xml version="1.0" encoding="ASCII"?><QuestionFormAnswers xmlns="{ANSWER_NS}"><Answer>'
            f'<QuestionIdentifier>choice</QuestionIdentifier><FreeText>{choice}</FreeText></Answer>'
            f'</QuestionFormAnswers>')


def create_app(vendor: FakeVendor | None = None, *, access_key_id: str = ACCESS_KEY_ID) -> FastAPI:
    vendor = vendor or FakeVendor("mturk", "fake-secret", crowd=Crowd(prefix="A3FAKEWORKER"))
    app = FastAPI(title="fake MTurk")
    install_controls(app, vendor, write_methods=(), error_body=lambda status, msg: {
        "__type": "ThrottlingException" if status == 429 else "ServiceFault", "Message": msg})
    hit_types: dict[str, dict[str, Any]] = {}
    hits: dict[str, dict[str, Any]] = {}
    tokens: dict[str, str] = {}
    work: dict[str, list[Work]] = {}
    reviews: dict[str, tuple[str, float, str | None]] = {}  # assignment id -> (status, when, feedback)
    lock = threading.RLock()
    writes = {"CreateHITType", "CreateHITWithHITType", "ApproveAssignment", "RejectAssignment",
              "UpdateExpirationForHIT", "DeleteHIT"}

    def error(code: str, message: str, turk: str | None = None, status: int = 400) -> JSONResponse:
        body = {"__type": code, "Message": message, **({"TurkErrorCode": turk} if turk else {})}
        return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": str(uuid.uuid4())})

    def token(offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()

    def offset_of(value: str | None) -> int:
        return int(json.loads(base64.urlsafe_b64decode(value.encode()))["o"]) if value else 0

    def hit_json(hit: dict[str, Any], now: float) -> dict[str, Any]:
        mine = work.get(hit["HITId"], [])
        expired = hit["Expiration"] <= now
        done = sum(1 for w in mine if w.done(now))
        pending = 0 if expired else sum(1 for w in mine if not w.done(now) and not w.withdrawn and w.created <= now)
        available = hit["MaxAssignments"] - done - pending  # unassigned slots stay counted after expiry
        status = "Reviewable" if expired or done >= hit["MaxAssignments"] else (
            "Unassignable" if available == 0 else "Assignable")
        return {**{k: v for k, v in hit.items() if not k.startswith("_")}, "HITStatus": status,
                "NumberOfAssignmentsPending": pending, "NumberOfAssignmentsAvailable": available,
                "NumberOfAssignmentsCompleted": sum(1 for w in mine if w.id in reviews)}

    def assignment_json(hit: dict[str, Any], w: Work) -> dict[str, Any]:
        status, when, feedback = reviews.get(w.id, ("Submitted", 0.0, None))
        out = {"AssignmentId": w.id, "WorkerId": w.rater, "HITId": hit["HITId"], "AssignmentStatus": status,
               "AutoApprovalTime": w.due + hit["_auto_delay"], "AcceptTime": w.created, "SubmitTime": w.due,
               "Deadline": w.created + hit["AssignmentDurationInSeconds"], "Answer": _answer_xml(w.label)}
        if status == "Approved":
            out["ApprovalTime"] = when
        if status == "Rejected":
            out["RejectionTime"] = when
        if feedback:
            out["RequesterFeedback"] = feedback
        return out

    def handle(op: str, p: dict[str, Any]) -> JSONResponse:
        now = time.time()
        if op == "CreateHITType":
            for key in ("AssignmentDurationInSeconds", "Reward", "Title", "Description"):
                if key not in p:
                    return error("RequestError", f"{key} is required", "AWS.MechanicalTurk.ParameterValidationError")
            if not re.fullmatch(r"[0-9]+(\.)?[0-9]{0,2}", str(p["Reward"])):
                return error("RequestError", "Reward is not a valid amount", "AWS.MechanicalTurk.ParameterValidationError")
            type_id = "3" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:29].upper()
            if type_id not in hit_types:
                hit_types[type_id] = dict(p)
                vendor.creations[f"hittype:{p['Title']}"] += 1
            return JSONResponse({"HITTypeId": type_id})
        if op == "CreateHITWithHITType":
            hit_type = hit_types.get(p.get("HITTypeId", ""))
            if hit_type is None:
                return error("RequestError", "HITTypeId does not exist", "AWS.MechanicalTurk.HITTypeDoesNotExist")
            question = p.get("Question", "")
            if len(question.encode()) > 65535 or "HTMLQuestion" not in question and "ExternalQuestion" not in question:
                return error("RequestError", "Question must be an HTMLQuestion or ExternalQuestion <= 64 KB",
                             "AWS.MechanicalTurk.XMLParseError")
            unique = p.get("UniqueRequestToken")
            if unique and unique in tokens:
                return error("RequestError", f"The HIT with ID \"{tokens[unique]}\" already exists. (UniqueRequestToken"
                             f" {unique})", "AWS.MechanicalTurk.HitAlreadyExists")
            hit_id = "3" + uuid.uuid4().hex[:29].upper()
            kind = (re.search(r'data-kind="(\w+)"', question) or [None, "pairwise"])[1]
            n = int((re.search(r'data-responses="(\d+)"', question) or [None, "2"])[1])
            scale = int((re.search(r'data-scale="(\d+)"', question) or [None, "5"])[1])
            hits[hit_id] = {"HITId": hit_id, "HITTypeId": p["HITTypeId"], "HITGroupId": "3G" + p["HITTypeId"][2:],
                            "CreationTime": now, "Title": hit_type["Title"], "Description": hit_type["Description"],
                            "Question": question, "Keywords": hit_type.get("Keywords", ""),
                            "MaxAssignments": int(p.get("MaxAssignments") or 1), "Reward": hit_type["Reward"],
                            "AutoApprovalDelayInSeconds": hit_type.get("AutoApprovalDelayInSeconds", 259200),
                            "Expiration": now + int(p.get("LifetimeInSeconds") or 86400),
                            "AssignmentDurationInSeconds": hit_type["AssignmentDurationInSeconds"],
                            "RequesterAnnotation": p.get("RequesterAnnotation"), "HITReviewStatus": "NotReviewed",
                            "_auto_delay": hit_type.get("AutoApprovalDelayInSeconds", 259200)}
            if unique:
                tokens[unique] = hit_id
            vendor.creations[f"hit:{p.get('RequesterAnnotation')}@{p['HITTypeId']}"] += 1
            work[hit_id] = plan_work(vendor, hit_id, kind, n, hits[hit_id]["MaxAssignments"], start=now, scale=scale,
                                     id_prefix="3ASG")
            for w in work[hit_id]:
                w.id = w.id[:30].upper()
            return JSONResponse({"HIT": hit_json(hits[hit_id], now)})
        if op in ("ListHITs", "ListAssignmentsForHIT"):
            limit = int(p.get("MaxResults") or 10)
            if not 1 <= limit <= 100:
                return error("RequestError", "MaxResults must be 1..100", "AWS.MechanicalTurk.ParameterValidationError")
            start = offset_of(p.get("NextToken"))
            if op == "ListHITs":
                rows = [hit_json(h, now) for h in sorted(hits.values(), key=lambda h: (h["CreationTime"], h["HITId"]))]
                key = "HITs"
            else:
                hit = hits.get(p.get("HITId", ""))
                if hit is None:
                    return error("RequestError", "HIT does not exist", "AWS.MechanicalTurk.HITDoesNotExist")
                wanted = set(p.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"])
                rows = [assignment_json(hit, w) for w in sorted(work[hit["HITId"]], key=lambda w: (w.due, w.id))
                        if w.done(now)]
                rows = [a for a in rows if a["AssignmentStatus"] in wanted]
                key = "Assignments"
            page = rows[start:start + limit]
            if key == "Assignments" and page and vendor.take("duplicate"):
                page.append(dict(page[0]))
                vendor.counters["duplicates_sent"] += 1
            if key == "Assignments" and page and vendor.take("malformed"):
                page.append({**page[-1], "AssignmentId": page[-1]["AssignmentId"][:-3] + "BAD",
                             "Answer": "<QuestionFormAnswers><Answer>truncated"})
                vendor.counters["malformed_sent"] += 1
            out: dict[str, Any] = {"NumResults": len(page), key: page}
            if start + limit < len(rows):
                out["NextToken"] = token(start + limit)
            return JSONResponse(out)
        if op == "GetHIT":
            hit = hits.get(p.get("HITId", ""))
            return JSONResponse({"HIT": hit_json(hit, now)}) if hit else error(
                "RequestError", "HIT does not exist", "AWS.MechanicalTurk.HITDoesNotExist")
        if op in ("ApproveAssignment", "RejectAssignment"):
            found = [(h, w) for h in hits.values() for w in work.get(h["HITId"], []) if w.id == p.get("AssignmentId")]
            if not found or not found[0][1].done(now):
                return error("RequestError", "Assignment does not exist or is not submitted",
                             "AWS.MechanicalTurk.AssignmentDoesNotExist")
            status = "Approved" if op == "ApproveAssignment" else "Rejected"
            current = reviews.get(found[0][1].id, ("Submitted", 0.0, None))[0]
            if current == status:  # idempotent, as the service is for a repeat of the same review
                return JSONResponse({})
            if current != "Submitted" and not (current == "Rejected" and p.get("OverrideRejection")):
                return error("RequestError", f"This operation can be called with a status of: Submitted "
                             f"(assignment is {current})", "AWS.MechanicalTurk.InvalidAssignmentState")
            reviews[found[0][1].id] = (status, now, p.get("RequesterFeedback"))
            vendor.counters[f"assignments_{status.lower()}"] += 1
            return JSONResponse({})
        if op == "UpdateExpirationForHIT":
            hit = hits.get(p.get("HITId", ""))
            if hit is None:
                return error("RequestError", "HIT does not exist", "AWS.MechanicalTurk.HITDoesNotExist")
            hit["Expiration"] = min(hit["Expiration"], float(p["ExpireAt"])) if float(p["ExpireAt"]) <= now else float(
                p["ExpireAt"])
            for w in work.get(hit["HITId"], []):
                if not w.done(now) and hit["Expiration"] <= now:
                    w.withdrawn = True
            vendor.counters["hits_expired"] += 1
            return JSONResponse({})
        if op == "GetAccountBalance":
            return JSONResponse({"AvailableBalance": "10000.00"})
        return error("UnknownOperationException", f"unknown operation {op}", status=400)

    @app.post("/")
    async def endpoint(request: Request) -> JSONResponse:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 ") or f"Credential={access_key_id}/" not in auth:
            return error("UnrecognizedClientException", "The security token included in the request is invalid.")
        if "/mturk-requester/aws4_request" not in auth:
            return error("InvalidSignatureException", "Credential should be scoped to service 'mturk-requester'.")
        target = request.headers.get("x-amz-target", "")
        if not target.startswith(TARGET):
            return error("UnknownOperationException", "missing X-Amz-Target")
        op = target[len(TARGET):]
        body = json.loads(await request.body() or b"{}")
        fail_after = op in writes and vendor.take("fail_after_write")
        with lock:
            response = handle(op, body)
        if fail_after:
            vendor.counters["failed_after_write"] += 1
            return error("ServiceFault", "We encountered an internal error. Please try again.", status=500)
        return response

    app.state.vendor = vendor
    app.state.tick = None
    return app
