"""Fixtures for the X12 tests: IG example Bundles (from PRIORGATE_IG_PATH) and golden scenario Bundles."""

from __future__ import annotations

import copy
import json
import os
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
PAS_PACKAGES = {"2.0.1": "davinci_pas_2.0.1.tgz", "2.2.1": "davinci_pas_2.2.1.tgz"}
X12 = "https://codesystem.x12.org/005010/"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.fixture(scope="session")
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def ig_request_bundles() -> list[tuple[str, str, dict[str, Any]]]:
    """(PAS version, file name, Bundle) for every PAS request and inquiry Bundle in the IG packages."""
    raw = os.environ.get("PRIORGATE_IG_PATH")
    if not raw or not Path(raw).is_dir():
        pytest.skip("PRIORGATE_IG_PATH is not set")
    out: list[tuple[str, str, dict[str, Any]]] = []
    for version, name in PAS_PACKAGES.items():
        with tarfile.open(Path(raw) / name) as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if not (base.startswith("Bundle-") and base.endswith(".json")):
                    continue
                handle = tar.extractfile(member)
                assert handle is not None
                bundle = json.loads(handle.read(), parse_float=Decimal)
                entries = bundle.get("entry") or []
                first = entries[0]["resource"]["resourceType"] if entries else ""
                if first == "Claim":
                    out.append((version, base, bundle))
    assert out, "no PAS request Bundles found in the IG packages"
    return out


def _cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": PAS + name, **value}


def _item(
    seq: int,
    code: str,
    *,
    system: str = CPT,
    category: str = "1",
    request: str = "HS",
    cert: str = "I",
    quantity: Any = None,
    price: Any = None,
    served: Any = None,
    extra: list[dict[str, Any]] | None = None,
    pos: str = "11",
    **fields: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "extension": [
            _ext("extension-serviceItemRequestType", valueCodeableConcept=_cc(X12 + "1525", request)),
            _ext("extension-certificationType", valueCodeableConcept=_cc(X12 + "1322", cert)),
            _ext(
                "extension-itemTraceNumber",
                valueIdentifier={"system": "urn:example:item", "value": f"TRACE-{seq}"},
            ),
            *(extra or []),
        ],
        "sequence": seq,
        "category": _cc(X12 + "1365", category),
        "productOrService": _cc(system, code),
        "locationCodeableConcept": _cc(POS, pos),
    }
    if served is not None:
        item["servicedPeriod" if isinstance(served, dict) else "servicedDate"] = served
    if quantity is not None:
        item["quantity"] = {"value": quantity}
    if price is not None:
        item["unitPrice"] = {"value": price, "currency": "USD"}
    item.update(fields)
    return item


def make_bundle(
    scenario: str,
    items: list[dict[str, Any]],
    *,
    claim_type: str = "professional",
    member: str = "W123456789",
    claim_extra: dict[str, Any] | None = None,
    resources: list[dict[str, Any]] | None = None,
    dependent: bool = False,
) -> dict[str, Any]:
    """A PAS request Bundle in the shape of the IG examples, varied per golden scenario."""
    base = "http://provider.example.org/fhir/"
    patient = {
        "resourceType": "Patient",
        "id": "pat",
        "identifier": [{"system": "urn:example:mrn", "value": "MRN1"}],
        "name": [{"family": "RIVERA", "given": ["ANA", "M"]}],
        "gender": "female",
        "birthDate": "1968-04-12",
        "address": [{"line": ["12 ELM ST"], "city": "COLUMBUS", "state": "OH", "postalCode": "43215"}],
    }
    subscriber = patient
    extra_resources: list[dict[str, Any]] = []
    if dependent:
        subscriber = {
            "resourceType": "Patient",
            "id": "sub",
            "name": [{"family": "RIVERA", "given": ["LUIS"]}],
            "gender": "male",
            "birthDate": "1966-01-30",
        }
        extra_resources.append(subscriber)
    coverage = {
        "resourceType": "Coverage",
        "id": "cov",
        "status": "active",
        "subscriberId": member,
        "subscriber": {"reference": f"Patient/{subscriber['id']}"},
        "beneficiary": {"reference": "Patient/pat"},
        "relationship": _cc(
            "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "spouse" if dependent else "self"
        ),
        "payor": [{"reference": "Organization/payer"}],
    }
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": scenario,
        "extension": [
            _ext("extension-levelOfServiceCode", valueCodeableConcept=_cc(X12 + "1338", "U")),
            {
                "url": PAS + "extension-TransmissionIdentifiers",
                "extension": [
                    {"url": "applicationSenderCode", "valueString": "PGCLIENT"},
                    {"url": "applicationReceiverCode", "valueString": "PAYERAPP"},
                    {"url": "interchangeSenderID", "valueString": "PROVIDER01"},
                    {"url": "interchangeReceiverID", "valueString": "PAYER01"},
                ],
            },
        ],
        "identifier": [
            {
                "system": "urn:trnorg:1311234567",
                "value": f"EV-{scenario.upper()}",
                "assigner": {"identifier": {"value": "1311234567"}},
            }
        ],
        "status": "active",
        "type": _cc("http://terminology.hl7.org/CodeSystem/claim-type", claim_type),
        "use": "preauthorization",
        "patient": {"reference": "Patient/pat"},
        "created": "2026-03-01T09:30:00-05:00",
        "insurer": {"reference": "Organization/payer"},
        "provider": {"reference": "PractitionerRole/requester"},
        "priority": _cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
        "careTeam": [
            {
                "extension": [_ext("extension-careTeamClaimScope", valueBoolean=True)],
                "sequence": 1,
                "provider": {"reference": "Organization/facility"},
                "role": _cc(X12 + "98", "FA"),
            },
            {
                "sequence": 2,
                "provider": {"reference": "Practitioner/surgeon"},
                "role": _cc(X12 + "98", "SJ"),
                "qualification": _cc("http://nucc.org/provider-taxonomy", "207X00000X"),
            },
        ],
        "diagnosis": [
            {
                "extension": [_ext("extension-diagnosisRecordedDate", valueDate="2026-02-20")],
                "sequence": 1,
                "diagnosisCodeableConcept": _cc("http://hl7.org/fhir/sid/icd-10-cm", "M17.11"),
            },
            {"sequence": 2, "diagnosisCodeableConcept": _cc("http://hl7.org/fhir/sid/icd-10-cm", "E11.9")},
        ],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov"}}],
        "item": items,
    }
    claim.update(claim_extra or {})
    for item in items:
        item.setdefault("careTeamSequence", [2])
    entries = [
        claim,
        {
            "resourceType": "Organization",
            "id": "payer",
            "identifier": [{"system": "urn:example:payer-id", "value": "PAYER01"}],
            "type": [_cc(X12 + "98", "X3")],
            "name": "EXAMPLE HEALTH PLAN",
        },
        {
            "resourceType": "PractitionerRole",
            "id": "requester",
            "practitioner": {"reference": "Practitioner/requesting"},
            "specialty": [_cc("http://nucc.org/provider-taxonomy", "207Q00000X")],
            "telecom": [{"system": "phone", "value": "614-555-0199"}],
        },
        {
            "resourceType": "Practitioner",
            "id": "requesting",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1982794441"}],
            "name": [{"family": "OKAFOR", "given": ["GRACE"]}],
            "address": [
                {"line": ["400 HIGH ST"], "city": "COLUMBUS", "state": "OH", "postalCode": "43215-1234"}
            ],
        },
        {
            "resourceType": "Practitioner",
            "id": "surgeon",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1902898222"}],
            "name": [{"family": "NGUYEN", "given": ["PAUL"]}],
        },
        {
            "resourceType": "Organization",
            "id": "facility",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            "name": "COLUMBUS SURGICAL CENTER",
            "address": [{"line": ["500 HIGH ST"], "city": "COLUMBUS", "state": "OH", "postalCode": "43215"}],
        },
        coverage,
        patient,
        *extra_resources,
        *(resources or []),
    ]
    return {
        "resourceType": "Bundle",
        "id": f"{scenario}-request",
        "identifier": {"system": "urn:example:submitter-transaction", "value": f"TX-{scenario.upper()}"},
        "type": "collection",
        "timestamp": "2026-03-01T09:30:00-05:00",
        "entry": [{"fullUrl": base + f"{r['resourceType']}/{r['id']}", "resource": r} for r in entries],
    }


def _scenarios() -> dict[str, tuple[str, dict[str, Any]]]:
    """Golden scenarios: name -> (kind, request Bundle). Kind is "submit" (X217) or "inquiry" (X215)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    out["approval"] = (
        "submit",
        make_bundle(
            "approval",
            [
                _item(
                    1,
                    "27447",
                    category="2",
                    quantity=1,
                    price=Decimal("35000.00"),
                    served={"start": "2026-03-15", "end": "2026-03-18"},
                    modifier=[_cc(CPT, "RT")],
                )
            ],
        ),
    )
    out["denial"] = (
        "submit",
        make_bundle(
            "denial", [_item(1, "B4185", system=HCPCS, category="12", quantity=30, served="2026-03-10")]
        ),
    )
    out["pended"] = (
        "submit",
        make_bundle("pended", [_item(1, "33510", category="2", quantity=1, served="2026-04-02")]),
    )
    out["partial_modified"] = (
        "submit",
        make_bundle(
            "partial_modified",
            [
                _item(1, "97110", category="PT", quantity=12, price=Decimal("45.50")),
                _item(2, "97140", category="PT", quantity=4, price=Decimal("40")),
            ],
        ),
    )
    out["cancel"] = (
        "submit",
        make_bundle(
            "cancel",
            [_item(1, "27447", category="2", cert="3")],
            claim_extra={"extension": [_ext("extension-authorizationNumber", valueString="PGAUTH0001")]},
        ),
    )
    update_items = [
        _item(1, "G0154", system=HCPCS, category="42", quantity=10),
        _item(
            2,
            "G0151",
            system=HCPCS,
            category="42",
            cert="3",
            extra=[_ext("extension-infoChanged", valueCode="changed")],
            modifierExtension=[{"url": PAS + "modifierextension-infoCancelled", "valueBoolean": True}],
        ),
        _item(
            3,
            "G0152",
            system=HCPCS,
            category="42",
            quantity=6,
            extra=[_ext("extension-infoChanged", valueCode="added")],
        ),
    ]
    for item in update_items:
        item["extension"].append(_ext("extension-authorizationNumber", valueString="PGAUTH0002"))
    out["update"] = (
        "submit",
        make_bundle(
            "update",
            update_items,
            claim_extra={
                "related": [
                    {
                        "claim": {"reference": "Claim/original"},
                        "relationship": _cc(
                            "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship", "prior"
                        ),
                    }
                ]
            },
        ),
    )
    encounter = {
        "resourceType": "Encounter",
        "id": "stay",
        "status": "planned",
        "extension": [
            _ext(
                "extension-patientStatus",
                valueCodeableConcept=_cc("https://www.nubc.org/CodeSystem/PatDischargeStatus", "30"),
            )
        ],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "type": [_cc("https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit", "3")],
        "subject": {"reference": "Patient/pat"},
        "hospitalization": {"admitSource": _cc("https://www.nubc.org/CodeSystem/PointOfOrigin", "1")},
    }
    inpatient = _item(
        1,
        "27447",
        category="48",
        request="AR",
        quantity=3,
        pos="21",
        revenue=_cc("https://www.nubc.org/CodeSystem/RevenueCodes", "0120"),
        extra=[_ext("extension-revenueUnitRateLimit", valueDecimal=Decimal("2500.00"))],
    )
    out["inpatient_admission"] = (
        "submit",
        make_bundle(
            "inpatient_admission",
            [inpatient],
            claim_type="institutional",
            claim_extra={
                "supportingInfo": [
                    {
                        "sequence": 1,
                        "category": _cc(
                            PAS.replace("StructureDefinition/", "CodeSystem/PASTempCodes"), "admissionDates"
                        ),
                        "timingPeriod": {"start": "2026-03-15", "end": "2026-03-18"},
                    }
                ],
                "extension": [
                    _ext("extension-levelOfServiceCode", valueCodeableConcept=_cc(X12 + "1338", "E")),
                    {
                        "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter",
                        "valueReference": {"reference": "Encounter/stay"},
                    },
                ],
            },
            resources=[encounter],
        ),
    )
    service_request = {
        "resourceType": "ServiceRequest",
        "id": "visits",
        "status": "active",
        "intent": "order",
        "code": _cc(HCPCS, "G0154"),
        "subject": {"reference": "Patient/pat"},
        "quantityQuantity": {
            "value": 12,
            "unit": "visits",
            "system": "http://unitsofmeasure.org",
            "code": "{visits}",
        },
        "occurrenceTiming": {"repeat": {"period": 4, "periodUnit": "wk"}},
    }
    home = _item(
        1,
        "G0154",
        system=HCPCS,
        category="42",
        quantity=12,
        extra=[_ext("extension-requestedService", valueReference={"reference": "ServiceRequest/visits"})],
    )
    out["home_health"] = (
        "submit",
        make_bundle(
            "home_health",
            [home],
            claim_extra={
                "extension": [
                    {
                        "url": PAS + "extension-homeHealthCareInformation",
                        "extension": [
                            {"url": "prognosis", "valueCodeableConcept": _cc(X12 + "923", "2")},
                            {"url": "date", "valueDate": "2026-03-05"},
                        ],
                    }
                ]
            },
            resources=[service_request],
        ),
    )
    out["dme_rental"] = (
        "submit",
        make_bundle(
            "dme_rental",
            [
                _item(
                    1,
                    "E0470",
                    system=HCPCS,
                    category="18",
                    quantity=3,
                    price=Decimal("210.25"),
                    modifier=[_cc(HCPCS, "RR")],
                    served={"start": "2026-03-10", "end": "2026-06-09"},
                    pos="12",
                )
            ],
        ),
    )
    out["aaa_rejection"] = (
        "submit",
        make_bundle("aaa_rejection", [_item(1, "27447", category="2")], member="INVALID0000"),
    )
    out["dependent_201"] = (
        "submit",
        make_bundle("dependent_201", [_item(1, "99213", category="3", served="2026-03-20")], dependent=True),
    )
    inquiry_item = _item(
        1,
        "27447",
        category="2",
        extra=[
            _ext("extension-itemCertificationIssueDate", valueDate="2026-03-04"),
            _ext("extension-reviewActionCode", valueCodeableConcept=_cc(X12 + "306", "A1")),
        ],
    )
    out["inquiry"] = (
        "inquiry",
        make_bundle(
            "inquiry",
            [inquiry_item],
            claim_extra={"extension": [_ext("extension-authorizationNumber", valueString="PG8B1C2D3E")]},
        ),
    )
    return out


@pytest.fixture(scope="session")
def scenarios() -> dict[str, tuple[str, dict[str, Any]]]:
    return _scenarios()


@pytest.fixture
def fresh() -> Callable[[dict[str, Any]], dict[str, Any]]:
    return copy.deepcopy
