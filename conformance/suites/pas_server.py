"""Da Vinci PAS server checks for 2.0.1 and 2.2.1 (each version on its own endpoint, PAS conf-1).

Modelled on the PAS test kit's server groups: error handling for an empty Bundle on both operations,
approval / pended / denial workflows with the X12 306 review action codes (A1, A4, A3), replay and
identifier conflicts, the claim-update sequence (2.2.1, as the kit runs it), must-support elements of the
responses, and ``$inquire`` output shapes. Requests are built here; nothing is imported from
the server. Subscription checks start a loopback rest-hook listener, so they run against a server on the
same machine (or in-process) and are skipped otherwise; the pended-notification check decides the pended
request through PriorGate's review API.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from conformance.framework import (
    Check,
    CheckFailed,
    CheckSkipped,
    Suite,
    Target,
    check,
    expect,
    expect_operation_outcome,
    expect_status,
)
from conformance.listener import Listener, reachable
from conformance.requirements import rows_csv

# Where each PAS version is served, under the server's base URL.
PAS_BASES = {"2.0.1": "/pas/2.0.1", "2.2.1": "/pas/2.2.1"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
X12 = "https://codesystem.x12.org/005010/"
ACTION_CODES = {"A1", "A2", "A3", "A4", "A6", "C", "CT", "NA"}
FIFTEEN_SECONDS = 15.0

Json = dict[str, Any]


def _url(version: str, operation: str) -> str:
    return f"{PAS_BASES[version]}/Claim/${operation}"


def _coded(url: str, system: str, code: str) -> Json:
    return {"url": url, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


def request_bundle(trace: str, codes: tuple[str, ...] = ("72148",)) -> Json:
    """A PAS request Bundle conforming to both versions' profiles: one Claim, urn:uuid references."""
    ids = {
        name: f"urn:uuid:{uuid.uuid4()}" for name in ("claim", "patient", "insurer", "requestor", "coverage")
    }
    items = [
        {
            "extension": [
                _coded(PAS + "extension-serviceItemRequestType", X12 + "1525", "HS"),
                _coded(PAS + "extension-certificationType", X12 + "1322", "I"),
            ],
            "sequence": n,
            "category": {"coding": [{"system": X12 + "1365", "code": "73"}]},
            "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]},
            "servicedDate": "2026-06-01",
            "locationCodeableConcept": {
                "coding": [
                    {
                        "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
                        "code": "22",
                    }
                ]
            },
        }
        for n, code in enumerate(codes, start=1)
    ]
    claim = {
        "resourceType": "Claim",
        "meta": {"profile": [PAS + "profile-claim"]},
        "identifier": [{"system": "urn:trnorg:1999999999", "value": trace}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "preauthorization",
        "patient": {"reference": ids["patient"]},
        "created": "2026-05-01T10:00:00Z",
        "insurer": {"reference": ids["insurer"]},
        "provider": {"reference": ids["requestor"]},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]
        },
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": ids["coverage"]}}],
        "item": items,
    }
    resources = [
        (ids["claim"], claim),
        (
            ids["patient"],
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:conformance:member", "value": f"M-{trace}"}],
                "name": [{"family": "Conformance", "given": ["Pat"]}],
                "gender": "female",
                "birthDate": "1970-01-01",
            },
        ),
        (
            ids["insurer"],
            {
                "resourceType": "Organization",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
                "active": True,
                "type": [{"coding": [{"system": X12 + "98", "code": "PR"}]}],
                "name": "Conformance Payer",
            },
        ),
        (
            ids["requestor"],
            {
                "resourceType": "Organization",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1417947896"}],
                "active": True,
                "type": [{"coding": [{"system": X12 + "98", "code": "X3"}]}],
                "name": "Conformance Clinic",
            },
        ),
        (
            ids["coverage"],
            {
                "resourceType": "Coverage",
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
                            ]
                        },
                        "system": "urn:conformance:member",
                        "value": f"M-{trace}",
                    }
                ],
                "status": "active",
                "beneficiary": {"reference": ids["patient"]},
                "relationship": {"coding": [{"system": X12 + "1069", "code": "18"}]},
                "payor": [{"reference": ids["insurer"]}],
            },
        ),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [PAS + "profile-pas-request-bundle"]},
        "identifier": {"system": "urn:conformance:submitter", "value": trace},
        "type": "collection",
        "timestamp": "2026-05-01T10:00:00Z",
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }


def _post(target: Target, url: str, body: Json) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = target.post(url, json=body, headers={"Content-Type": "application/fhir+json"})
    return response, time.perf_counter() - started


def _claim_response(response: httpx.Response) -> Json:
    body = response.json()
    expect(
        body.get("resourceType") == "Bundle", f"$submit returned a {body.get('resourceType')!r}, not a Bundle"
    )
    entries = body.get("entry") or []
    expect(bool(entries), "the response Bundle has no entries")
    first = entries[0].get("resource", {})
    expect(first.get("resourceType") == "ClaimResponse", "the first entry is not a ClaimResponse (spec-30)")
    return dict(first)


def _action_codes(claim_response: Json) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in claim_response.get("item", []):
        for adjudication in item.get("adjudication", []):
            for review in adjudication.get("extension", []):
                if review.get("url") != PAS + "extension-reviewAction":
                    continue
                for part in review.get("extension", []):
                    if part.get("url") == PAS + "extension-reviewActionCode":
                        coding = part["valueCodeableConcept"]["coding"][0]
                        expect(
                            coding.get("system") == X12 + "306",
                            f"review action system {coding.get('system')}",
                        )
                        out[item["itemSequence"]] = coding["code"]
    return out


def _submit_ok(target: Target, version: str, bundle: Json) -> tuple[Json, Json]:
    response, seconds = _post(target, _url(version, "submit"), bundle)
    expect_status(response, 200, 201)
    expect(seconds <= FIFTEEN_SECONDS, f"$submit took {seconds:.1f} s, over the 15 s budget (spec-7)")
    return response.json(), _claim_response(response)


def _per_version(
    prefix: str, title: str, *requirements: str
) -> Callable[[Callable[[Target, str], None]], tuple[Check, ...]]:
    def wrap(function: Callable[[Target, str], None]) -> tuple[Check, ...]:
        return tuple(
            check(f"{prefix}-{v}", f"{title} ({v})", *(r.format(v=v) for r in requirements))(
                lambda target, v=v: function(target, v)  # type: ignore[misc]
            )
            for v in PAS_BASES
        )

    return wrap


@_per_version(
    "empty-bundle-submit",
    "$submit of an empty Bundle answers 4xx with one OperationOutcome",
    "pas-{v}#spec-35",
    "pas-{v}#spec-39",
)
def empty_submit(target: Target, version: str) -> None:
    response, _ = _post(
        target, _url(version, "submit"), {"resourceType": "Bundle", "type": "collection", "entry": []}
    )
    expect(400 <= response.status_code < 500, f"answered {response.status_code}, expected 4xx")
    expect_operation_outcome(response)


@_per_version(
    "empty-bundle-inquire",
    "$inquire of an empty Bundle answers 4xx with one OperationOutcome",
    "pas-{v}#spec-35",
    "pas-{v}#spec-39",
)
def empty_inquire(target: Target, version: str) -> None:
    response, _ = _post(
        target, _url(version, "inquire"), {"resourceType": "Bundle", "type": "collection", "entry": []}
    )
    expect(400 <= response.status_code < 500, f"answered {response.status_code}, expected 4xx")
    expect_operation_outcome(response)


@_per_version(
    "submit-decision",
    "$submit answers a Response Bundle with a review action code per item",
    "pas-{v}#spec-30",
    "pas-{v}#spec-34",
    "pas-{v}#review-action",
)
def submit_decision(target: Target, version: str) -> None:
    bundle = request_bundle(f"C{uuid.uuid4().hex[:10]}", ("72148", "97110"))
    body, claim_response = _submit_ok(target, version, bundle)
    codes = _action_codes(claim_response)
    expect(sorted(codes) == [1, 2], f"itemSequence values {sorted(codes)}, submitted [1, 2] (spec-34)")
    expect(set(codes.values()) <= ACTION_CODES, f"unknown review action codes {codes}")
    expect("A3" not in codes.values(), "a request was denied without a reviewer")
    allowed = {"complete", "partial", "error"} | ({"queued"} if version == "2.0.1" else set())
    expect(claim_response.get("outcome") in allowed, f"outcome {claim_response.get('outcome')!r}")
    if version == "2.2.1":
        expect(bool(body.get("identifier")), "the 2.2.1 response Bundle has no identifier")
        expect(bool(claim_response.get("request")), "the 2.2.1 ClaimResponse has no request")
    urls = [e.get("fullUrl") for e in body["entry"]]
    expect(len(urls) == len(set(urls)), "a resource appears twice in the response (spec-31)")
    for ref in (claim_response.get("patient", {}), claim_response.get("insurer", {})):
        expect(urls.count(ref.get("reference")) == 1, f"{ref} does not resolve to one entry (spec-30)")


@_per_version(
    "submit-replay",
    "resubmitting the same request returns the same answer and creates nothing",
    "priorgate#pas-idempotent-replay",
)
def submit_replay(target: Target, version: str) -> None:
    bundle = request_bundle(f"R{uuid.uuid4().hex[:10]}")
    _, first = _submit_ok(target, version, bundle)
    again = copy.deepcopy(bundle)
    again["timestamp"] = "2026-05-01T10:05:00Z"
    _, second = _submit_ok(target, version, again)
    expect(first.get("id") == second.get("id"), "a replay produced a new ClaimResponse")
    expect(_action_codes(first) == _action_codes(second), "a replay produced different decisions")


@_per_version(
    "submit-conflict",
    "reusing a Claim identifier for a different request is an error",
    "priorgate#pas-identifier-conflict",
)
def submit_conflict(target: Target, version: str) -> None:
    trace = f"X{uuid.uuid4().hex[:10]}"
    _submit_ok(target, version, request_bundle(trace, ("72148",)))
    response, _ = _post(target, _url(version, "submit"), request_bundle(trace, ("70551",)))
    expect(400 <= response.status_code < 500, f"answered {response.status_code}, expected 409 or another 4xx")
    expect_operation_outcome(response)


@_per_version(
    "inquire-shape",
    "$inquire returns Parameters of Bundles (2.2.1) or one Bundle (2.0.1)",
    "pas-{v}#inquire-output",
)
def inquire_shape(target: Target, version: str) -> None:
    bundle = request_bundle(f"Q{uuid.uuid4().hex[:10]}")
    _submit_ok(target, version, bundle)
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = f"I{uuid.uuid4().hex[:10]}"
    response, _ = _post(target, _url(version, "inquire"), inquiry)
    expect_status(response, 200, 201)
    body = response.json()
    if version == "2.2.1":
        expect(
            body.get("resourceType") == "Parameters",
            f"2.2.1 $inquire returned a {body.get('resourceType')!r}",
        )
        returned = [p for p in body.get("parameter", []) if p.get("name") == "return"]
        expect(len(returned) >= 1, "the submitted request was not found by $inquire")
        expect(all(p["resource"]["resourceType"] == "Bundle" for p in returned), "a return is not a Bundle")
    else:
        expect(
            body.get("resourceType") == "Bundle", f"2.0.1 $inquire returned a {body.get('resourceType')!r}"
        )
        _claim_response(response)


# -- workflows, claim updates and must support (the PAS test kit's groups 2 and 3) ----------------------
#
# The kit takes tester-supplied approval, denial and pended payloads; this suite uses codes PriorGate's
# demo plan answers known ways: 97110 (therapeutic exercise) is certified, 72148 (lumbar spine MRI
# without documentation) is pended. A denial (A3) always needs a reviewer, so the denial workflow decides
# the pended request through PriorGate's review API (skipped where the caller may not use it).

APPROVED_CODE = "97110"
PENDED_CODE = "72148"
PRIOR = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship"


def _review_item(target: Target, trace: str) -> Json:
    """The review-queue entry of the request with Claim identifier ``trace`` (PriorGate's review API)."""
    queue = target.get("/pas/review")
    if queue.status_code == 404:
        raise CheckSkipped("the server has no PriorGate review API to decide the pended request")
    if queue.status_code in (401, 403):
        raise CheckSkipped("this client may not use the review API (payer staff only); run with a reviewer")
    expect_status(queue, 200)
    token = f"urn:trnorg:1999999999|{trace}"
    item = next((q for q in queue.json() if token in q.get("claimIdentifiers", [])), None)
    if item is None:
        raise CheckFailed("the pended request is not in the review queue")
    return dict(item)


def _decide(target: Target, review_id: str, decision: Json) -> httpx.Response:
    """POST a reviewer's decision; skipped when this client is not payer staff (the queue may show a
    client its own pended requests, but only reviewers decide them)."""
    answer = target.post(f"/pas/review/{review_id}/decision", json=decision)
    if answer.status_code in (401, 403):
        raise CheckSkipped("this client may not decide pended requests (reviewers only); run as a reviewer")
    expect_status(answer, 200)
    return answer


def _pended(target: Target, version: str, trace: str) -> tuple[Json, Json]:
    body, claim_response = _submit_ok(target, version, request_bundle(trace, (PENDED_CODE,)))
    expect(_action_codes(claim_response).get(1) == "A4", f"not pended: {_action_codes(claim_response)}")
    return body, claim_response


@_per_version(
    "workflow-approval",
    "an approvable request is certified (A1) with an authorization number and period",
    "pas-{v}#spec-30",
    "pas-{v}#review-action",
)
def workflow_approval(target: Target, version: str) -> None:
    _, claim_response = _submit_ok(
        target, version, request_bundle(f"A{uuid.uuid4().hex[:10]}", (APPROVED_CODE,))
    )
    codes = _action_codes(claim_response)
    expect(codes.get(1) == "A1", f"review action codes {codes}, expected A1 for item 1")
    expect(claim_response.get("outcome") == "complete", f"outcome {claim_response.get('outcome')!r}")
    expect(bool(claim_response.get("preAuthRef")), "a certified request has no preAuthRef (HCR02)")
    expect(bool(claim_response.get("preAuthPeriod")), "a certified request has no preAuthPeriod")


@_per_version(
    "workflow-pended",
    "a request that needs review is pended (A4) with the reason, and $inquire finds it pended",
    "pas-{v}#review-action",
    "pas-{v}#inquire-output",
)
def workflow_pended(target: Target, version: str) -> None:
    trace = f"W{uuid.uuid4().hex[:10]}"
    _, claim_response = _pended(target, version, trace)
    allowed = {"partial", "complete"} | ({"queued"} if version == "2.0.1" else set())
    expect(claim_response.get("outcome") in allowed, f"outcome {claim_response.get('outcome')!r}")
    expect(bool(claim_response.get("processNote")), "the pended item carries no reason (processNote)")
    inquiry = _inquiry_of(request_bundle(trace, (PENDED_CODE,)))
    response, _ = _post(target, _url(version, "inquire"), inquiry)
    expect_status(response, 200, 201)
    body = response.json()
    if version == "2.2.1":
        bundles = [p.get("resource", {}) for p in body.get("parameter", []) if p.get("name") == "return"]
        expect(len(bundles) >= 1, "$inquire did not find the pended request")
        first = (bundles[0].get("entry") or [{}])[0].get("resource") or {}
    else:
        expect(
            body.get("resourceType") == "Bundle", f"2.0.1 $inquire returned a {body.get('resourceType')!r}"
        )
        first = (body.get("entry") or [{}])[0].get("resource") or {}
    expect(first.get("resourceType") == "ClaimResponse", "the inquiry result has no ClaimResponse first")
    expect(_action_codes(first).get(1) == "A4", f"$inquire reports {_action_codes(first)}, not pended")


@_per_version(
    "workflow-denial",
    "a pended request a reviewer denies answers A3 with the reason code and text",
    "pas-{v}#review-action",
    "priorgate#pas-review-api",
)
def workflow_denial(target: Target, version: str) -> None:
    trace = f"D{uuid.uuid4().hex[:10]}"
    _pended(target, version, trace)
    item = _review_item(target, trace)
    decision = {
        "reviewer": {"id": "conformance"},
        "decisions": [
            {
                "itemSequence": 1,
                "action": "deny",
                "reasonCode": {"system": X12 + "886", "code": "AA"},
                "reasonText": "Conservative therapy not documented",
            }
        ],
    }
    claim_response = _claim_response(_decide(target, item["id"], decision))
    expect(_action_codes(claim_response).get(1) == "A3", f"the decision is {_action_codes(claim_response)}")
    expect(
        any("Conservative therapy" in str(n.get("text")) for n in claim_response.get("processNote", [])),
        "the denial reason text is not in processNote",
    )


def _inquiry_of(bundle: Json) -> Json:
    inquiry = copy.deepcopy(bundle)
    inquiry["meta"] = {"profile": [PAS + "profile-pas-inquiry-request-bundle"]}
    inquiry["entry"][0]["resource"]["meta"] = {"profile": [PAS + "profile-claim-inquiry"]}
    inquiry["entry"][0]["resource"]["identifier"][0]["value"] = f"I{uuid.uuid4().hex[:10]}"
    return inquiry


def _update_of(prior: Json, trace: str, version: str = "2.2.1") -> Json:
    """An update of the request Bundle ``prior`` with a new identifier, ``related`` to the prior Claim: in
    2.2.1 a PASClaimUpdate with the prior Claim included in the Bundle; in 2.0.1 (one Claim per Bundle)
    the prior Claim named by its identifier. Same items and parties, none marked changed yet."""
    bundle = copy.deepcopy(prior)
    bundle["entry"] = [bundle["entry"][0]] + [
        e for e in bundle["entry"][1:] if e.get("resource", {}).get("resourceType") != "Claim"
    ]
    prior_entry = copy.deepcopy(prior["entry"][0])
    claim = bundle["entry"][0]["resource"]
    claim["identifier"][0]["value"] = trace
    if version == "2.2.1":
        # the grandparent Claim is left out (PAS spec-65/66): the prior names it by identifier instead
        by_url = {e.get("fullUrl"): e.get("resource", {}) for e in prior["entry"]}
        for rel in prior_entry["resource"].get("related", []):
            grandparent = by_url.get(rel.get("claim", {}).get("reference"))
            if grandparent is not None:
                rel["claim"] = {"identifier": copy.deepcopy(grandparent["identifier"][0])}
        prior_entry["fullUrl"] = f"urn:uuid:{uuid.uuid4()}"
        claim["meta"] = {"profile": [PAS + "profile-claim-update"]}
        related: Json = {"reference": prior_entry["fullUrl"]}
        bundle["entry"].append(prior_entry)
    else:
        related = {"identifier": copy.deepcopy(prior_entry["resource"]["identifier"][0])}
    claim["related"] = [{"claim": related, "relationship": {"coding": [{"system": PRIOR, "code": "prior"}]}}]
    for item in claim.get("item", []):
        item["extension"] = [
            e for e in item.get("extension", []) if e.get("url") != PAS + "extension-infoChanged"
        ]
    bundle["identifier"]["value"] = trace
    return bundle


def _changed(item: Json, how: str) -> None:
    item.setdefault("extension", []).append({"url": PAS + "extension-infoChanged", "valueCode": how})


def _sequences_echoed(
    claim_response: Json, submitted: set[int], step: str, *, all_items: bool = True
) -> None:
    returned = {i.get("itemSequence") for i in claim_response.get("item", [])}
    unknown = returned - submitted
    expect(not unknown, f"{step}: itemSequence {sorted(unknown)} was never submitted (spec-34)")
    if all_items:
        missing = submitted - returned
        expect(not missing, f"{step}: no current result for items {sorted(missing)} (spec-46)")


@check(
    "claim-updates-2.2.1",
    "the claim-update sequence (initial, add an item, change and cancel items, cancel all) answers each item",
    "pas-2.2.1#spec-34",
    "pas-2.2.1#spec-46",
)
def claim_updates(target: Target) -> None:
    version = "2.2.1"
    base = f"U{uuid.uuid4().hex[:9]}"
    initial = request_bundle(base, (APPROVED_CODE, APPROVED_CODE))
    _, first = _submit_ok(target, version, initial)
    _sequences_echoed(first, {1, 2}, "initial request")

    added = _update_of(initial, f"{base}-1")
    items = added["entry"][0]["resource"]["item"]
    third = copy.deepcopy(items[0])
    third["sequence"] = 3
    third["productOrService"]["coding"][0]["code"] = "97112"
    _changed(third, "added")
    items.append(third)
    _, second = _submit_ok(target, version, added)
    _sequences_echoed(second, {1, 2, 3}, "item added")

    modified = _update_of(added, f"{base}-2")
    items = modified["entry"][0]["resource"]["item"]
    items[0]["quantity"] = {"value": 2}
    _changed(items[0], "changed")
    items[1]["extension"] = [e for e in items[1]["extension"] if e.get("url") != _cancel()["url"]]
    items[1]["extension"].append(_cancel())  # on an item: cancels that item
    _changed(items[1], "changed")
    _, third_answer = _submit_ok(target, version, modified)
    _sequences_echoed(third_answer, {1, 2, 3}, "item changed and item cancelled")
    codes = _action_codes(third_answer)
    expect(codes.get(2) == "C", f"the cancelled item 2 is {codes.get(2)!r}, not C")

    cancelled = _update_of(modified, f"{base}-3")
    claim = cancelled["entry"][0]["resource"]
    claim.setdefault("extension", []).append(_cancel())
    for item in claim["item"]:  # the profile keeps item 1..*: each item is cancelled too
        item["extension"] = [e for e in item["extension"] if e.get("url") != _cancel()["url"]]
        item["extension"].append(_cancel())
        _changed(item, "changed")
    _, last = _submit_ok(target, version, cancelled)
    _sequences_echoed(last, {1, 2, 3}, "whole request cancelled")
    expect(
        all(code == "C" for code in _action_codes(last).values()),
        f"after cancelling the request the items are {_action_codes(last)}",
    )


def _cancel() -> Json:
    """certificationType 3 (X12 1322 "Cancel"): on the Claim it cancels the whole request."""
    return {
        "url": PAS + "extension-certificationType",
        "valueCodeableConcept": {"coding": [{"system": X12 + "1322", "code": "3"}]},
    }


# Must-support elements of PASResponseBundle and PASClaimResponse a server always has the data for, given
# an approval, a pend and a rejected update (the kit checks every MS element across observed responses;
# these are the ones this suite's requests give the server the data for).
_BUNDLE_MS = ("identifier", "timestamp")
_CLAIM_RESPONSE_MS = (
    "identifier",
    "status",
    "patient",
    "created",
    "insurer",
    "requestor",
    "request",
    "outcome",
    "preAuthPeriod",
    "item",
    "processNote",
    "error",
)
_ITEM_MS = ("itemSequence", "noteNumber", "adjudication")
_ITEM_EXTENSIONS_MS = ("extension-itemPreAuthIssueDate", "extension-itemPreAuthPeriod")
_ERROR_EXTENSIONS_MS = ("extension-errorFollowupAction", "extension-errorElement", "extension-errorPath")


@_per_version(
    "must-support",
    "approval, pend and rejection responses populate the PAS response must-support elements",
    "pas-{v}#must-support",
)
def must_support(target: Target, version: str) -> None:
    responses = [
        _submit_ok(target, version, request_bundle(f"M{uuid.uuid4().hex[:10]}", (code,)))
        for code in (APPROVED_CODE, PENDED_CODE)
    ]
    unknown_prior = request_bundle(f"N{uuid.uuid4().hex[:10]}", (APPROVED_CODE,))
    rejected = _update_of(unknown_prior, f"N{uuid.uuid4().hex[:10]}", version)  # of a request never sent
    responses.append(_submit_ok(target, version, rejected))
    missing: list[str] = []
    bundles = [b for b, _ in responses]
    claim_responses = [c for _, c in responses]
    items = [i for c in claim_responses for i in c.get("item", [])]
    errors = [e for c in claim_responses for e in c.get("error", [])]
    missing += [f"Bundle.{e}" for e in _BUNDLE_MS if not any(b.get(e) for b in bundles)]
    missing += [
        f"ClaimResponse.{e}" for e in _CLAIM_RESPONSE_MS if not any(c.get(e) for c in claim_responses)
    ]
    missing += [f"ClaimResponse.item.{e}" for e in _ITEM_MS if not any(i.get(e) for i in items)]
    present = {str(x.get("url", "")).removeprefix(PAS) for i in items for x in i.get("extension", [])}
    missing += [f"ClaimResponse.item.extension:{e}" for e in _ITEM_EXTENSIONS_MS if e not in present]
    present = {str(x.get("url", "")).removeprefix(PAS) for e in errors for x in e.get("extension", [])}
    missing += [f"ClaimResponse.error.extension:{e}" for e in _ERROR_EXTENSIONS_MS if e not in present]
    if not any(e.get("code") for e in errors):
        missing.append("ClaimResponse.error.code")
    if not any(
        review.get("url") == PAS + "extension-reviewAction"
        for i in items
        for a in i.get("adjudication", [])
        for review in a.get("extension", [])
    ):
        missing.append("ClaimResponse.item.adjudication.extension:reviewAction")
    expect(not missing, "must-support elements never populated: " + ", ".join(missing))


# -- subscriptions (Subscriptions R5 Backport 1.1.0 on R4; the PAS test kit's subscription groups) ------

TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
REQUESTOR_NPI = "1417947896"  # the requesting provider of request_bundle(): the submitter's organization
NOTIFICATION_WAIT = 15.0


def subscription(endpoint: str, version: str, org: str = REQUESTOR_NPI, channel: str = "rest-hook") -> Json:
    """A PAS Subscription: the PAS topic, an org-identifier filter, rest-hook, the version's payload."""
    content = "full-resource" if version == "2.2.1" else "id-only"
    body: Json = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "PAS results for my organization",
        "criteria": TOPIC,
        "_criteria": {
            "extension": [
                {"url": BACKPORT + "backport-filter-criteria", "valueString": f"org-identifier={org}"}
            ]
        },
        "channel": {
            "type": channel,
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]},
        },
    }
    if version == "2.2.1":
        body["meta"] = {"profile": [PAS + "profile-subscription"]}
    return body


def status_of(notification: Any) -> Json:
    """The SubscriptionStatus parameters (first entry) of a notification Bundle, by name ({} if not one)."""
    if not isinstance(notification, dict) or notification.get("resourceType") != "Bundle":
        return {}
    entries = notification.get("entry") or [{}]
    first = entries[0].get("resource") or {}
    if first.get("resourceType") != "Parameters":
        return {}
    return {p.get("name"): p for p in first.get("parameter", [])}


def event_numbers(notifications: Iterable[Any]) -> Counter[int]:
    """How many times each event number arrived among ``notifications`` (event notifications only).

    A subscriber drops repeats by event number; delivery is at least once, so a count above one is a
    repeat, and a number missing from ``1..events-since-subscription-start`` a lost notification."""
    seen: Counter[int] = Counter()
    for body in notifications:
        if status_of(body).get("type", {}).get("valueCode") != "event-notification":
            continue
        first = body["entry"][0]["resource"]
        for param in first.get("parameter", []):
            if param.get("name") != "notification-event":
                continue
            for part in param.get("part", []):
                if part.get("name") == "event-number":
                    seen[int(part["valueString"])] += 1
    return seen


def _of_type(kind: str) -> Callable[[Any], bool]:
    return lambda body: status_of(body).get("type", {}).get("valueCode") == kind


def _arrived(hook: Listener, kind: str) -> Json:
    body = hook.wait_for(_of_type(kind), NOTIFICATION_WAIT)
    if not isinstance(body, dict):
        raise CheckFailed(f"no {kind} reached the endpoint within {NOTIFICATION_WAIT:.0f} s")
    return body


def _subscribe(target: Target, version: str, endpoint: str) -> str:
    response = target.post(
        f"{PAS_BASES[version]}/Subscription",
        json=subscription(endpoint, version),
        headers={"Content-Type": "application/fhir+json"},
    )
    expect_status(response, 201)
    created = response.json()
    expect(created.get("resourceType") == "Subscription", "the create did not answer the Subscription")
    expect(
        created.get("status") in ("requested", "active"), f"a new Subscription is {created.get('status')!r}"
    )
    expect(bool(created.get("id")), "the created Subscription has no id")
    return str(created["id"])


def _needs_listener(target: Target) -> None:
    if not reachable(target.client):
        raise CheckSkipped(
            "needs a rest-hook listener reachable from the server; run the server on this machine"
        )


@_per_version(
    "subscription-handshake",
    "creating a PAS Subscription sends a handshake and the Subscription turns active",
    "pas-{v}#spec-54",
    "pas-{v}#spec-56",
)
def subscription_handshake(target: Target, version: str) -> None:
    _needs_listener(target)
    with Listener() as hook:
        subscription_id = _subscribe(target, version, hook.url)
        try:
            shake = _arrived(hook, "handshake")
            expect(shake.get("type") == "history", f"the handshake Bundle is a {shake.get('type')!r}")
            params = status_of(shake)
            expect(
                params.get("topic", {}).get("valueCanonical") == TOPIC, "the handshake names another topic"
            )
            reference = params.get("subscription", {}).get("valueReference", {}).get("reference", "")
            expect(
                reference.endswith(f"Subscription/{subscription_id}"),
                f"the handshake is for {reference!r}",
            )
            url = f"{PAS_BASES[version]}/Subscription/{subscription_id}"
            deadline = time.monotonic() + NOTIFICATION_WAIT
            status = None
            while time.monotonic() < deadline:
                status = target.get(url).json().get("status")
                if status == "active":
                    break
                time.sleep(0.1)
            expect(status == "active", f"after the handshake the Subscription is {status!r}, not active")
            answer = target.get(f"{url}/$status")
            expect_status(answer, 200)
        finally:
            target.delete(f"{PAS_BASES[version]}/Subscription/{subscription_id}")


@_per_version(
    "subscription-refused",
    "a Subscription with another channel or without an org-identifier filter is refused (4xx)",
    "pas-{v}#spec-56",
    "pas-{v}#spec-58",
)
def subscription_refused(target: Target, version: str) -> None:
    url = f"{PAS_BASES[version]}/Subscription"
    websocket = subscription("https://example.org/hook", version, channel="websocket")
    unfiltered = subscription("https://example.org/hook", version)
    del unfiltered["_criteria"]
    for body, what in ((websocket, "a websocket channel"), (unfiltered, "no org-identifier filter")):
        response = target.post(url, json=body, headers={"Content-Type": "application/fhir+json"})
        expect(400 <= response.status_code < 500, f"{what}: answered {response.status_code}, expected 4xx")
        expect_operation_outcome(response)


@_per_version(
    "pended-notification",
    "a pended request decided by a reviewer reaches the subscriber as an event notification",
    "pas-{v}#spec-60",
    "pas-{v}#spec-61",
    "priorgate#pas-review-api",
)
def pended_notification(target: Target, version: str) -> None:
    _needs_listener(target)
    if target.get("/pas/review").status_code in (401, 403, 404):
        raise CheckSkipped("the pended request can only be decided through PriorGate's review API, as staff")
    trace = f"P{uuid.uuid4().hex[:10]}"
    with Listener() as hook:
        subscription_id = _subscribe(target, version, hook.url)
        try:
            expect(
                hook.wait_for(_of_type("handshake"), NOTIFICATION_WAIT) is not None, "no handshake arrived"
            )
            _, pended = _submit_ok(target, version, request_bundle(trace, ("72148",)))
            expect(
                _action_codes(pended).get(1) == "A4", f"the request was not pended: {_action_codes(pended)}"
            )
            item = _review_item(target, trace)
            decision = {
                "reviewer": {"id": "conformance"},
                "decisions": [{"itemSequence": 1, "action": "approve"}],
            }
            _decide(target, item["id"], decision)
            note = _arrived(hook, "event-notification")
            params = status_of(note)
            expect(
                params.get("topic", {}).get("valueCanonical") == TOPIC, "the notification names another topic"
            )
            event = {p.get("name"): p for p in params.get("notification-event", {}).get("part", [])}
            expect("event-number" in event, "the notification-event has no event-number")
            focus = event.get("focus", {}).get("valueReference", {}).get("reference")
            expect(bool(focus), "the notification-event has no focus")
            carried = [e.get("resource") for e in note.get("entry", [])[1:] if e.get("fullUrl") == focus]
            if version == "2.2.1":
                expect(
                    len(carried) == 1, "the notification does not carry the focus (full-resource, spec-62)"
                )
                bundle = carried[0] or {}
                expect(bundle.get("type") == "collection", f"the focus is a {bundle.get('type')!r} Bundle")
                first = (bundle.get("entry") or [{}])[0].get("resource") or {}
                expect(
                    first.get("resourceType") == "ClaimResponse",
                    "the focus Bundle has no ClaimResponse first",
                )
                expect(
                    _action_codes(first).get(1) == "A1", f"the notified decision is {_action_codes(first)}"
                )
            else:
                expect(len(note.get("entry", [])) == 1, "an id-only notification carries resources")
        finally:
            target.delete(f"{PAS_BASES[version]}/Subscription/{subscription_id}")


# The requirements this suite cites (id, ig, version, url, text, actor), for
# conformance/requirements/davinci-pas.csv. They stay here until the suite is registered, because a new
# CSV changes the committed coverage report in the same step; ``requirements_csv()`` renders the file.
_SPEC_201 = "https://hl7.org/fhir/us/davinci-pas/STU2/"
_SPEC_221 = "https://hl7.org/fhir/us/davinci-pas/2.2.1/"
REQUIREMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "pas-2.0.1#spec-35",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#error-handling",
        "A Bundle that cannot be processed is answered with a single OperationOutcome explaining why",
        "server",
    ),
    (
        "pas-2.0.1#spec-39",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#error-handling",
        "Synchronous answers: 2xx success, 4xx failure with an OperationOutcome, 5xx transient failure",
        "server",
    ),
    (
        "pas-2.0.1#spec-30",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#submitting-a-prior-authorization",
        "The response Bundle starts with the ClaimResponse and includes every resource it references",
        "server",
    ),
    (
        "pas-2.0.1#spec-34",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#submitting-a-prior-authorization",
        "Every returned item echoes the submitted item.sequence as itemSequence",
        "server",
    ),
    (
        "pas-2.0.1#review-action",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "StructureDefinition-extension-reviewAction.html",
        "Item decisions carry the X12 306 review action code (A1, A3, A4, A6) in adjudication.reviewAction",
        "server",
    ),
    (
        "pas-2.0.1#inquire-output",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "OperationDefinition-Claim-inquiry.html",
        "Claim/$inquire returns one PAS Inquiry Response Bundle",
        "server",
    ),
    (
        "pas-2.0.1#spec-54",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#subscription",
        "The server supports R4 Subscriptions to the PAS topic per the Subscriptions R5 Backport IG",
        "server",
    ),
    (
        "pas-2.0.1#spec-56",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#subscription",
        "Subscriptions use the rest-hook channel",
        "server",
    ),
    (
        "pas-2.0.1#spec-58",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#subscription",
        "Subscriptions filter on the requesting organization identifier (orgIdentifier)",
        "server",
    ),
    (
        "pas-2.0.1#spec-60",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#subscription",
        "A subscriber is notified when a pended request of its organization gets a result",
        "server",
    ),
    (
        "pas-2.0.1#spec-61",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "specification.html#subscription",
        "Notifications are id-only unless full-resource was agreed",
        "server",
    ),
    (
        "pas-2.0.1#must-support",
        "hl7.fhir.us.davinci-pas",
        "2.0.1",
        _SPEC_201 + "StructureDefinition-profile-claimresponse.html",
        "Servers populate the must-support elements of the PAS response profiles when they have the data",
        "server",
    ),
    (
        "pas-2.2.1#spec-35",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#error-handling",
        "A Bundle that cannot be processed is answered with a single OperationOutcome explaining why",
        "server",
    ),
    (
        "pas-2.2.1#spec-39",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#error-handling",
        "Synchronous answers: 2xx success, 4xx failure with an OperationOutcome, 5xx transient failure",
        "server",
    ),
    (
        "pas-2.2.1#spec-30",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html",
        "The response Bundle starts with the ClaimResponse and includes every resource it references",
        "server",
    ),
    (
        "pas-2.2.1#spec-34",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html",
        "Every returned item echoes the submitted item.sequence as itemSequence",
        "server",
    ),
    (
        "pas-2.2.1#review-action",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "StructureDefinition-extension-reviewAction.html",
        "Item decisions carry the X12 306 review action code (A1, A3, A4, A6) in adjudication.reviewAction",
        "server",
    ),
    (
        "pas-2.2.1#inquire-output",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "OperationDefinition-Claim-inquiry.html",
        "Claim/$inquire returns a Parameters with 0..* return PAS Inquiry Response Bundles",
        "server",
    ),
    (
        "pas-2.2.1#spec-46",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html",
        "Responses return current results for all submitted items, including changed or cancelled ones",
        "server",
    ),
    (
        "pas-2.2.1#spec-54",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "The server supports R4 Subscriptions per the Subscriptions R5 Backport IG",
        "server",
    ),
    (
        "pas-2.2.1#spec-56",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "Subscriptions use the rest-hook channel only",
        "server",
    ),
    (
        "pas-2.2.1#spec-58",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "Subscriptions filter on org-identifier=[sending system identifier], a comma-separated list allowed",
        "server",
    ),
    (
        "pas-2.2.1#spec-60",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "A subscriber is notified when a response for its organization changes",
        "server",
    ),
    (
        "pas-2.2.1#spec-61",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "The notification includes the full PAS Response Bundle",
        "server",
    ),
    (
        "pas-2.2.1#spec-62",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "specification.html#subscription",
        "Notifications carry full-resource content only",
        "server",
    ),
    (
        "pas-2.2.1#must-support",
        "hl7.fhir.us.davinci-pas",
        "2.2.1",
        _SPEC_221 + "StructureDefinition-profile-claimresponse.html",
        "Servers populate the must-support elements of the PAS response profiles when they have the data",
        "server",
    ),
    (
        "priorgate#pas-review-api",
        "priorgate",
        "0.1.0",
        "",
        "A reviewer decides pended items through POST /pas/review/{id}/decision",
        "server",
    ),
    (
        "priorgate#pas-idempotent-replay",
        "priorgate",
        "0.1.0",
        "",
        "A resubmitted identical request returns the same answer and creates nothing new",
        "server",
    ),
    (
        "priorgate#pas-identifier-conflict",
        "priorgate",
        "0.1.0",
        "",
        "Reusing a Claim identifier for a different request is an error",
        "server",
    ),
)


def requirements_csv() -> str:
    return rows_csv(REQUIREMENTS)


SUITE = Suite(
    name="pas-server",
    title="Da Vinci PAS 2.0.1 and 2.2.1 server",
    checks=(
        *empty_submit,
        *empty_inquire,
        *submit_decision,
        *submit_replay,
        *submit_conflict,
        *inquire_shape,
        *workflow_approval,
        *workflow_pended,
        *workflow_denial,
        claim_updates,
        *must_support,
        *subscription_refused,
        *subscription_handshake,
        *pended_notification,
    ),
)
