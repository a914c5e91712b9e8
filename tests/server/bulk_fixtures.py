"""Members, their data and their consents for the bulk export tests (shared by the HTTP and the
security tests)."""

from __future__ import annotations

from typing import Any

from server.bulk.codes import EXPORT_PURPOSE_SYSTEM
from server.consent.codes import (
    HREX_POLICY_REGULAR,
    PARTICIPATION_TYPE_SYSTEM,
    PAYER_API_CONSENT_SYSTEM,
    PAYER_ID_SYSTEM,
    PROVIDER_ACCESS,
)
from server.pas import urls

Json = dict[str, Any]
CLINIC = "org-clinic"
OTHER_CLINIC = "org-other-clinic"
NEW_PAYER = "org-new-payer"
NEW_PAYER_ID = "NEWPAYER"
NDC = "http://hl7.org/fhir/sid/ndc"
CPT = "http://www.ama-assn.org/go/cpt"


def _patient(pid: str) -> Json:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": pid.upper()}]}


def _claim(cid: str, patient: str, *, system: str = CPT, served: str = "2026-02-01") -> Json:
    return {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "use": "preauthorization",
        "patient": {"reference": f"Patient/{patient}"},
        "created": "2026-01-15",
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": system, "code": "12345"}]},
                "servicedDate": served,
            }
        ],
    }


def _claim_response(rid: str, claim: str, patient: str, action: str) -> Json:
    return {
        "resourceType": "ClaimResponse",
        "id": rid,
        "status": "active",
        "use": "preauthorization",
        "outcome": "complete",
        "patient": {"reference": f"Patient/{patient}"},
        "request": {"reference": f"Claim/{claim}"},
        "created": "2026-01-16",
        "item": [
            {
                "itemSequence": 1,
                "adjudication": [
                    {
                        "extension": [
                            {
                                "url": urls.EXT_REVIEW_ACTION,
                                "extension": [
                                    {
                                        "url": urls.EXT_REVIEW_ACTION_CODE,
                                        "valueCodeableConcept": {
                                            "coding": [{"system": urls.CS_X12_ACTION_CODE, "code": action}]
                                        },
                                    }
                                ],
                            }
                        ],
                        "category": {"coding": [{"code": "submitted"}]},
                    }
                ],
            }
        ],
    }


def _observation(oid: str, patient: str, when: str) -> Json:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
    }


def opt_out(cid: str, patient: str, kind: str = "deny", when: str = "2026-01-01") -> Json:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": PAYER_API_CONSENT_SYSTEM, "code": PROVIDER_ACCESS}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": when,
        "provision": {"type": kind},
    }


def hrex_opt_in(cid: str, patient: str, payer_id: str = NEW_PAYER_ID, end: str = "2027-01-01") -> Json:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IDSCL"}]}
        ],
        "patient": {"reference": f"Patient/{patient}"},
        "policy": [{"uri": HREX_POLICY_REGULAR}],
        "provision": {
            "type": "permit",
            "period": {"start": "2026-01-01", "end": end},
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION_TYPE_SYSTEM, "code": "IRCP"}]},
                    "reference": {"identifier": {"system": PAYER_ID_SYSTEM, "value": payer_id}},
                }
            ],
        },
    }


def group(gid: str, managing: str, members: list[str], purpose: str | None = None) -> Json:
    out: Json = {
        "resourceType": "Group",
        "id": gid,
        "type": "person",
        "actual": True,
        "managingEntity": {"reference": f"Organization/{managing}"},
        "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members],
    }
    if purpose is not None:
        out["code"] = {"coding": [{"system": EXPORT_PURPOSE_SYSTEM, "code": purpose}]}
    return out


def payer_data() -> list[Json]:
    """p1: PA data (approved, denied, drug), an EOB with payments, old and recent observations, opted in
    for the new payer; p2: a condition, no opt-in; p3: opted out of Provider Access."""
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "id": "eob1",
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2025-06-01",
        "billablePeriod": {"start": "2025-05-01"},
        "payment": {"amount": {"value": 100, "currency": "USD"}},
        "total": [{"category": {"text": "paid"}, "amount": {"value": 100, "currency": "USD"}}],
        "item": [{"sequence": 1, "adjudication": [{"category": {"text": "copay"}, "amount": {"value": 20}}]}],
    }
    return [
        {"resourceType": "Organization", "id": CLINIC, "name": "Clinic"},
        {"resourceType": "Organization", "id": OTHER_CLINIC, "name": "Other clinic"},
        {
            "resourceType": "Organization",
            "id": NEW_PAYER,
            "name": "New payer",
            "identifier": [{"system": PAYER_ID_SYSTEM, "value": NEW_PAYER_ID}],
        },
        _patient("p1"),
        _patient("p2"),
        _patient("p3"),
        {
            "resourceType": "Coverage",
            "id": "cov1",
            "status": "active",
            "beneficiary": {"reference": "Patient/p1"},
            "payor": [{"reference": "Organization/org-new-payer"}],
        },
        _claim("c-ok", "p1"),
        _claim_response("cr-ok", "c-ok", "p1", "A1"),
        _claim("c-denied", "p1"),
        _claim_response("cr-denied", "c-denied", "p1", "A3"),
        _claim("c-drug", "p1", system=NDC),
        _claim_response("cr-drug", "c-drug", "p1", "A1"),
        eob,
        _observation("obs-2015", "p1", "2015-06-01"),
        _observation("obs-2019", "p1", "2019-06-01"),
        _observation("obs-2025", "p1", "2025-06-01"),
        {
            "resourceType": "Condition",
            "id": "cond-p2",
            "subject": {"reference": "Patient/p2"},
            "code": {"text": "asthma"},
            "recordedDate": "2024-02-02",
        },
        _observation("obs-p3", "p3", "2025-01-01"),
        opt_out("consent-p3", "p3"),
        hrex_opt_in("consent-p1", "p1"),
    ]
