"""Member access checks (CMS-0057-F): HRex 1.0.0 ``Patient/$member-match`` and Patient Access to prior
authorizations as PDex 2.0.0 prior-authorization ExplanationOfBenefits.

The member-match checks store a member Patient (with the server's member identifier system) and ask for
it. The Patient Access checks store the member ``Patient/conformance-member`` (an update with a client
id), submit a PAS request naming its member id (``/fhir/Claim/$submit``) and find the resulting
ExplanationOfBenefit by patient, status and creation date. The patient-token check needs
``Target.patient_headers``: a patient-context token (``patient/ExplanationOfBenefit.rs``) whose
``patient`` is ``conformance-member``; it is skipped without one. The Payer-to-Payer check needs
``Target.organization`` (``--organization``): the id of the Organization the client acts for, which its
Consents name as the recipient; it is skipped without one (and ``member-match-found`` then names HRex's
example NPI, which a server checking the recipient refuses).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from conformance.framework import (
    CheckSkipped,
    Suite,
    Target,
    check,
    expect,
    expect_operation_outcome,
    expect_status,
)
from conformance.requirements import rows_csv
from conformance.suites.pas_server import request_bundle
from conformance.suites.payer_apis import _download, _kickoff, _wait

Json = dict[str, Any]

MEMBER_SYSTEM = "https://priorgate.org/fhir/sid/member"
MEMBER_PATIENT_ID = "conformance-member"
HREX_POLICY = "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#"
PDEX_PA = "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization"
CLAIM_IDENTIFIER_SYSTEM = "urn:trnorg:1999999999"  # what pas_server.request_bundle uses
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _member(member_id: str, patient_id: str | None = None) -> Json:
    body: Json = {
        "resourceType": "Patient",
        "identifier": [{"system": MEMBER_SYSTEM, "value": member_id}],
        "name": [{"family": "Conformance", "given": ["Pat"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
    }
    if patient_id:
        body["id"] = patient_id
    return body


def _coded(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def _recipient(organization: str = "") -> Json:
    """The Consent's recipient: the requesting payer's Organization when known, else HRex's example NPI."""
    if organization:
        return {"reference": f"Organization/{organization}"}
    return {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "0123456789"}}


def _consent(policy: str = "regular", organization: str = "") -> Json:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": _coded("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [_coded("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IDSCL")],
        "patient": {"reference": "Patient/1"},
        "performer": [{"reference": "Patient/1"}],
        "sourceReference": {"reference": "http://example.org/DocumentReference/consent.pdf"},
        "policy": [{"uri": HREX_POLICY + policy}],
        "provision": {
            "type": "permit",
            "period": {"start": "2000-01-01", "end": "2999-12-31"},
            "actor": [
                {
                    "role": _coded(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "performer"
                    ),
                    "reference": {
                        "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "9876543210"}
                    },
                },
                {
                    "role": _coded("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                    "reference": _recipient(organization),
                },
            ],
            "action": [_coded("http://terminology.hl7.org/CodeSystem/consentaction", "disclose")],
        },
    }


def match_input(member_id: str, consent: Json | None = None, organization: str = "") -> Json:
    """$member-match input Parameters asking for the member with id ``member_id`` (HRex example shape)."""
    patient = _member("ignored")
    patient["identifier"] = [{"system": "http://example.org/new-payer/member", "value": "N-1"}]
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberPatient", "resource": patient},
            {
                "name": "CoverageToMatch",
                "resource": {
                    "resourceType": "Coverage",
                    "identifier": [{"value": member_id}],
                    "status": "active",
                    "beneficiary": {"reference": "Patient/1"},
                    "payor": [{"display": "Old Health Plan"}],
                },
            },
            {
                "name": "CoverageToLink",
                "resource": {
                    "resourceType": "Coverage",
                    "identifier": [{"system": "http://example.org/new-payer/coverage", "value": "234567"}],
                    "status": "active",
                    "beneficiary": {"reference": "Patient/1"},
                    "payor": [{"display": "New Health Plan"}],
                },
            },
            {"name": "Consent", "resource": consent or _consent(organization=organization)},
        ],
    }


def _member_match(target: Target, body: Json) -> httpx.Response:
    return target.post(target.fhir("Patient/$member-match"), json=body, headers=FHIR_JSON)


@check(
    "member-match-found",
    "$member-match finds the member and returns its MemberIdentifier (type MB)",
    "hrex-1.0.0#member-match",
)
def member_match_found(target: Target) -> None:
    member_id = f"CM-{uuid.uuid4().hex[:10]}"
    created = target.post(target.fhir("Patient"), json=_member(member_id), headers=FHIR_JSON)
    expect_status(created, 201)
    answer = _member_match(target, match_input(member_id, organization=target.organization))
    expect_status(answer, 200)
    body = answer.json()
    expect(body.get("resourceType") == "Parameters", "the answer is not a Parameters resource")
    found = [p for p in body.get("parameter", []) if p.get("name") == "MemberIdentifier"]
    expect(len(found) == 1, "the answer has no (or several) MemberIdentifier parameters")
    identifier = found[0].get("valueIdentifier") or {}
    expect(identifier.get("value") == member_id, f"MemberIdentifier is {identifier.get('value')!r}")
    codes = {c.get("code") for c in (identifier.get("type") or {}).get("coding", [])}
    expect("MB" in codes, "MemberIdentifier.type is not MB")


@check(
    "member-match-no-match",
    "$member-match answers 422 with an OperationOutcome when no member matches",
    "hrex-1.0.0#member-match-no-match",
)
def member_match_no_match(target: Target) -> None:
    answer = _member_match(target, match_input(f"UNKNOWN-{uuid.uuid4().hex[:10]}"))
    expect_status(answer, 422)
    expect_operation_outcome(answer)


@check(
    "member-match-consent",
    "$member-match answers 422 for a Consent the server cannot comply with (#sensitive)",
    "hrex-1.0.0#member-match-consent",
)
def member_match_consent(target: Target) -> None:
    member_id = f"CM-{uuid.uuid4().hex[:10]}"
    expect_status(target.post(target.fhir("Patient"), json=_member(member_id), headers=FHIR_JSON), 201)
    answer = _member_match(target, match_input(member_id, _consent("sensitive")))
    expect_status(answer, 422)
    expect_operation_outcome(answer)


@check(
    "member-match-bad-input",
    "$member-match answers 400 with an OperationOutcome for malformed input",
    "hrex-1.0.0#member-match-input",
)
def member_match_bad_input(target: Target) -> None:
    missing = match_input("X")
    missing["parameter"] = [p for p in missing["parameter"] if p["name"] != "CoverageToMatch"]
    no_ids = copy.deepcopy(match_input("X"))
    del no_ids["parameter"][1]["resource"]["identifier"]
    for body in ({"resourceType": "Patient"}, missing, no_ids):
        answer = _member_match(target, body)
        expect_status(answer, 400)
        expect_operation_outcome(answer)


EXPORT_PURPOSE = "https://priorgate.org/fhir/CodeSystem/export-purpose"


@check(
    "member-match-payer-to-payer",
    "a payer matches a member with a Consent naming it, finds its Payer-to-Payer Group, exports the member",
    "hrex-1.0.0#consent-recipient",
    "cms-0057-f#payer-to-payer-match-export",
)
def member_match_payer_to_payer(target: Target) -> None:
    if not target.organization:
        raise CheckSkipped("needs the Organization the client acts for (--organization)")
    member_id = f"CM-{uuid.uuid4().hex[:10]}"
    created = target.post(target.fhir("Patient"), json=_member(member_id), headers=FHIR_JSON)
    expect_status(created, 201)
    patient = f"Patient/{created.json()['id']}"
    elsewhere = match_input(member_id, _consent(organization=f"not-{target.organization}"))
    refused = _member_match(target, elsewhere)
    expect_status(refused, 422)
    expect_operation_outcome(refused)
    expect_status(_member_match(target, match_input(member_id, organization=target.organization)), 200)
    query = f"managing-entity=Organization/{target.organization}&code={EXPORT_PURPOSE}|payer-to-payer"
    groups = _search(target, query, resource_type="Group")
    expect(len(groups) == 1, f"found {len(groups)} Payer-to-Payer Groups managed by the requesting payer")
    members = [(m.get("entity") or {}).get("reference") for m in groups[0].get("member", [])]
    expect(members.count(patient) == 1, f"the Group lists {patient} {members.count(patient)} times")
    manifest = _wait(target, _kickoff(target, str(groups[0]["id"]), "?_type=Patient"))
    exported = _download(target, manifest)
    expect(patient in exported, f"the export of the requesting payer's Group lacks {patient}")


def _prior_authorization(target: Target) -> tuple[str, Json]:
    """Store the member ``Patient/conformance-member``, submit a PAS request for it, return the request's
    Claim identifier value and the ExplanationOfBenefit found for it."""
    trace = f"CMA{uuid.uuid4().hex[:10].upper()}"
    member = _member(f"M-{trace}", MEMBER_PATIENT_ID)  # request_bundle names member id M-<trace>
    expect_status(
        target.put(target.fhir(f"Patient/{MEMBER_PATIENT_ID}"), json=member, headers=FHIR_JSON), 200, 201
    )
    submitted = target.post(target.fhir("Claim/$submit"), json=request_bundle(trace), headers=FHIR_JSON)
    expect_status(submitted, 200)
    found = _search(
        target, f"patient=Patient/{MEMBER_PATIENT_ID}&identifier={CLAIM_IDENTIFIER_SYSTEM}|{trace}"
    )
    expect(len(found) == 1, f"{len(found)} ExplanationOfBenefits found for the request, expected 1")
    return trace, found[0]


def _search(
    target: Target,
    query: str,
    headers: dict[str, str] | None = None,
    resource_type: str = "ExplanationOfBenefit",
) -> list[Json]:
    answer = target.get(target.fhir(f"{resource_type}?{query}"), headers=headers or {})
    expect_status(answer, 200)
    bundle = answer.json()
    expect(bundle.get("type") == "searchset", "the search answer is not a searchset Bundle")
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match" and isinstance(e.get("resource"), dict)
    ]


@check(
    "patient-access-eob",
    "a PAS result is available as a PDex prior-authorization ExplanationOfBenefit, searchable by patient, "
    "status and created",
    "pdex-2.0.0#prior-authorization",
    "pdex-2.0.0#eob-search",
    "cms-0057-f#patient-access-prior-authorization",
)
def patient_access_eob(target: Target) -> None:
    trace, eob = _prior_authorization(target)
    expect(eob.get("use") == "preauthorization", f"use is {eob.get('use')!r}")
    profiles = [p.split("|")[0] for p in eob.get("meta", {}).get("profile", [])]
    expect(PDEX_PA in profiles, "meta.profile does not name the PDex prior-authorization profile")
    expect(
        eob.get("patient", {}).get("reference") == f"Patient/{MEMBER_PATIENT_ID}", "patient is not the member"
    )
    for item in eob.get("item", []):
        review = [
            e
            for adjudication in item.get("adjudication", [])
            for e in adjudication.get("extension", [])
            if e.get("url", "").endswith("extension-reviewAction")
        ]
        expect(bool(review), f"item {item.get('sequence')} has no reviewAction")
    own = f"patient=Patient/{MEMBER_PATIENT_ID}&identifier={CLAIM_IDENTIFIER_SYSTEM}|{trace}"
    status = eob.get("status")
    expect(len(_search(target, f"{own}&status={status}")) == 1, f"status={status} does not find it")
    other = "cancelled" if status != "cancelled" else "active"
    expect(_search(target, f"{own}&status={other}") == [], f"status={other} finds it")
    created = str(eob.get("created", ""))[:10]
    expect(len(_search(target, f"{own}&created=ge{created}")) == 1, "created=ge<its date> does not find it")
    expect(_search(target, f"{own}&created=lt{created}") == [], "created=lt<its date> finds it")


@check(
    "patient-access-patient-token",
    "a patient-context token reads its own prior-authorization ExplanationOfBenefits and no other patient's",
    "cms-0057-f#patient-access-prior-authorization",
    "smart-2.1.0#patient-scopes",
)
def patient_access_patient_token(target: Target) -> None:
    if not target.patient_headers:
        raise CheckSkipped(f"no patient-context token for Patient/{MEMBER_PATIENT_ID} was given")
    patient = dict(target.patient_headers)
    trace, eob = _prior_authorization(target)
    read = target.get(target.fhir(f"ExplanationOfBenefit/{eob['id']}"), headers=patient)
    expect_status(read, 200)
    expect(read.json().get("id") == eob["id"], "the read returned another resource")
    mine = _search(target, f"identifier={CLAIM_IDENTIFIER_SYSTEM}|{trace}&status=active", patient)
    expect([e.get("id") for e in mine] == [eob["id"]], "the patient's own search does not find its EOB")
    others = _search(target, "patient=Patient/another-patient", patient)
    expect(others == [], "a search naming another patient returned data")


_HREX = "https://hl7.org/fhir/us/davinci-hrex/STU1/OperationDefinition-member-match.html"
_PDEX = "https://hl7.org/fhir/us/davinci-pdex/STU2/"
REQUIREMENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "hrex-1.0.0#member-match",
        "hl7.fhir.us.davinci-hrex",
        "1.0.0",
        _HREX,
        "Patient/$member-match takes MemberPatient, CoverageToMatch, CoverageToLink and Consent and returns "
        "the member's MemberIdentifier; a deterministic match needs the member or subscriber id at least",
        "server",
    ),
    (
        "hrex-1.0.0#member-match-no-match",
        "hl7.fhir.us.davinci-hrex",
        "1.0.0",
        _HREX,
        "When no unique member matches, the operation fails with 422 and an OperationOutcome",
        "server",
    ),
    (
        "hrex-1.0.0#member-match-consent",
        "hl7.fhir.us.davinci-hrex",
        "1.0.0",
        _HREX,
        "A Consent the server cannot comply with (such as #sensitive without data segmentation) is refused "
        "with 422",
        "server",
    ),
    (
        "hrex-1.0.0#member-match-input",
        "hl7.fhir.us.davinci-hrex",
        "1.0.0",
        _HREX,
        "Input that does not follow the operation's parameters and profiles is refused with an "
        "OperationOutcome",
        "server",
    ),
    (
        "hrex-1.0.0#consent-recipient",
        "hl7.fhir.us.davinci-hrex",
        "1.0.0",
        "https://hl7.org/fhir/us/davinci-hrex/STU1/StructureDefinition-hrex-consent.html",
        "At least one Consent.provision.actor in role IRCP (recipient) refers to the requesting system's "
        "organization",
        "server",
    ),
    (
        "cms-0057-f#payer-to-payer-match-export",
        "cms-0057-f",
        "2024",
        "https://www.federalregister.gov/d/2024-00895",
        "Payer-to-Payer API: a new payer identifies its member at the previous payer and, with the "
        "member's opt-in, receives the member's data of the last five years (claims, encounters, prior "
        "authorizations)",
        "server",
    ),
    (
        "pdex-2.0.0#prior-authorization",
        "hl7.fhir.us.davinci-pdex",
        "2.0.0",
        _PDEX + "StructureDefinition-pdex-priorauthorization.html",
        "Prior authorization information is exposed as ExplanationOfBenefit with use = preauthorization "
        "conforming to pdex-priorauthorization, with each item's review action",
        "server",
    ),
    (
        "pdex-2.0.0#eob-search",
        "hl7.fhir.us.davinci-pdex",
        "2.0.0",
        _PDEX + "CapabilityStatement-pdex-server.html",
        "ExplanationOfBenefit is searchable by patient, status, created and _lastUpdated",
        "server",
    ),
    (
        "cms-0057-f#patient-access-prior-authorization",
        "cms-0057-f",
        "2024",
        "https://www.federalregister.gov/d/2024-00895",
        "The Patient Access API includes the patient's prior authorization requests and decisions (items and "
        "services, excluding drugs), available within one business day of a status change",
        "server",
    ),
    (
        "smart-2.1.0#patient-scopes",
        "hl7.fhir.uv.smart-app-launch",
        "2.1.0",
        "https://hl7.org/fhir/smart-app-launch/STU2.1/scopes-and-launch-context.html",
        "patient/ scopes give access to data about the patient in context only",
        "server",
    ),
)


def requirements_csv() -> str:
    return rows_csv(REQUIREMENTS)


SUITE = Suite(
    name="member-access",
    title="Member access: HRex $member-match and Patient Access to prior authorizations (PDex)",
    checks=(
        member_match_found,
        member_match_no_match,
        member_match_consent,
        member_match_bad_input,
        member_match_payer_to_payer,
        patient_access_eob,
        patient_access_patient_token,
    ),
)
