"""Demo content for the operations pages: four staff users, open pended requests with due times around
now, and a previous calendar year of decided requests, so the queue, the dashboard and the public metrics
have something to show (``make run``; every request goes through ``Claim/$submit`` and the review API).

Loading is idempotent: staff users are added when none exist, requests when no submission is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from server.pas.decision import Modification
from server.pas.fhirdata import Code
from server.pas.review import ReviewerAction, ReviewerDecision
from server.pas.urls import CS_X12_REVIEW_DECISION_REASON
from server.pas.versions import PasVersion
from server.settings import Settings

from .auth import Role
from .service import OpsService, Staff

Json = dict[str, Any]

PAS: Final = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
X12: Final = "https://codesystem.x12.org/005010/"
CPT: Final = "http://www.ama-assn.org/go/cpt"
HCPCS: Final = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
NUCC: Final = "http://nucc.org/provider-taxonomy"
X12_886: Final = CS_X12_REVIEW_DECISION_REASON
DEMO_PAYER_NPI: Final = "1999999984"

# (username, display name, role, password, NPI). The passwords are for the demo only: README lists them.
DEMO_STAFF: Final = (
    ("reviewer", "Riley Reviewer", Role.REVIEWER, "reviewer-demo", None),
    ("clinician", "Dr. Casey Clinician", Role.CLINICIAN_REVIEWER, "clinician-demo", "1922222226"),
    ("manager", "Morgan Manager", Role.MANAGER, "manager-demo", None),
    ("admin", "Avery Admin", Role.ADMIN, "admin-demo", None),
)


@dataclass(frozen=True)
class Site:
    name: str
    npi: str
    specialty: tuple[str, str]  # NUCC taxonomy code, display


SITES: Final = (
    Site("Riverside Orthopedics", "1417947896", ("207X00000X", "Orthopaedic Surgery")),
    Site("Lakeview Sleep Center", "1649244351", ("207RS0012X", "Sleep Medicine")),
    Site("Northside Family Medicine", "1285739864", ("207Q00000X", "Family Medicine")),
    Site("Harbor Imaging Associates", "1558369480", ("2085R0202X", "Diagnostic Radiology")),
)

# (code system, code, X12 1365 service type) of services the demo rules pend for review.
SERVICES: Final = (
    (CPT, "72148", "73"),
    (CPT, "74160", "4"),
    (HCPCS, "E0601", "12"),
    (CPT, "74170", "4"),
)


def request_bundle(
    trace: str,
    *,
    site: Site,
    codes: tuple[tuple[str, str, str], ...],
    expedited: bool = False,
    line_of_business: str = "HMO",
    member: str = "",
    created: datetime | None = None,
    birth_date: str = "1968-04-12",
    documentation: bool = False,
) -> Json:
    """A PAS request Bundle (Claim, Patient, payer, requesting organization and practitioner, Coverage)."""
    names = ("claim", "patient", "payer", "org", "pract", "cov", "qr", "doc")
    urls = {n: f"urn:uuid:{_uuid(trace, n)}" for n in names}
    member = member or f"PGM-{int(hashlib.sha256(trace.encode()).hexdigest()[:6], 16) % 90000 + 10000}"
    stamp = (created or datetime(2026, 1, 5, 9, tzinfo=UTC)).isoformat().replace("+00:00", "Z")
    items = [
        {
            "extension": [
                _coded(PAS + "extension-serviceItemRequestType", X12 + "1525", "HS"),
                _coded(PAS + "extension-certificationType", X12 + "1322", "I"),
            ],
            "sequence": n,
            "careTeamSequence": [1],
            "category": {"coding": [{"system": X12 + "1365", "code": category}]},
            "productOrService": {"coding": [{"system": system, "code": code}]},
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
        for n, (system, code, category) in enumerate(codes, start=1)
    ]
    priority = "stat" if expedited else "normal"
    claim = {
        "resourceType": "Claim",
        "meta": {"profile": [PAS + "profile-claim"]},
        "identifier": [{"system": f"urn:trnorg:{site.npi}", "value": trace}],
        "status": "active",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]
        },
        "use": "preauthorization",
        "patient": {"reference": urls["patient"]},
        "created": stamp,
        "insurer": {"reference": urls["payer"]},
        "provider": {"reference": urls["org"]},
        "priority": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": priority}]
        },
        "careTeam": [
            {
                "sequence": 1,
                "provider": {"reference": urls["pract"]},
                "qualification": {
                    "coding": [{"system": NUCC, "code": site.specialty[0], "display": site.specialty[1]}]
                },
            }
        ],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": urls["cov"]}}],
        "item": items,
    }
    family = ("Rivera", "Chen", "Okafor", "Novak", "Haddad", "Lindqvist", "Patel", "Moreau")[
        int(hashlib.sha256(member.encode()).hexdigest()[:4], 16) % 8
    ]
    resources = [
        (urls["claim"], claim),
        (
            urls["patient"],
            {
                "resourceType": "Patient",
                "identifier": [{"system": "https://priorgate.org/fhir/sid/member", "value": member}],
                "name": [{"family": family, "given": ["Sam"]}],
                "gender": "female",
                "birthDate": birth_date,
            },
        ),
        (
            urls["payer"],
            {
                "resourceType": "Organization",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": DEMO_PAYER_NPI}],
                "active": True,
                "type": [{"coding": [{"system": X12 + "98", "code": "PR"}]}],
                "name": "PriorGate Demo Health Plan",
            },
        ),
        (
            urls["org"],
            {
                "resourceType": "Organization",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": site.npi}],
                "active": True,
                "type": [{"coding": [{"system": X12 + "98", "code": "X3"}]}],
                "name": site.name,
            },
        ),
        (
            urls["pract"],
            {
                "resourceType": "Practitioner",
                "identifier": [
                    {"system": "http://hl7.org/fhir/sid/us-npi", "value": site.npi[::-1][:9] + "3"}
                ],
                "name": [{"family": "Demo", "given": ["Dana"]}],
            },
        ),
        (
            urls["cov"],
            {
                "resourceType": "Coverage",
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}
                            ]
                        },
                        "system": "https://priorgate.org/fhir/sid/member",
                        "value": member,
                    }
                ],
                "status": "active",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": line_of_business,
                        }
                    ]
                },
                "beneficiary": {"reference": urls["patient"]},
                "relationship": {"coding": [{"system": X12 + "1069", "code": "18"}]},
                "payor": [{"reference": urls["payer"]}],
            },
        ),
    ]
    if documentation:
        claim["supportingInfo"] = [
            {"sequence": 1, "category": _info_category(), "valueReference": {"reference": urls["qr"]}},
            {"sequence": 2, "category": _info_category(), "valueReference": {"reference": urls["doc"]}},
        ]
        resources.extend(_documentation(urls, stamp))
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [PAS + "profile-pas-request-bundle"]},
        "identifier": {"system": f"urn:trnorg:{site.npi}", "value": trace},
        "type": "collection",
        "timestamp": stamp,
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in resources],
    }


def _info_category() -> Json:
    return {
        "coding": [
            {
                "system": "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASSupportingInfoType",
                "code": "additionalInformation",
            }
        ]
    }


def _documentation(urls: dict[str, str], stamp: str) -> list[tuple[str, Json]]:
    """A DTR QuestionnaireResponse and a sleep-study report (DocumentReference) for the request."""
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "https://priorgate.org/fhir/Questionnaire/cpap|1.0.0",
        "status": "completed",
        "subject": {"reference": urls["patient"]},
        "authored": stamp,
        "item": [
            {
                "linkId": "ahi",
                "text": "Apnea-hypopnea index (events per hour)",
                "answer": [{"valueDecimal": 18}],
            },
            {
                "linkId": "f2f",
                "text": "Face-to-face evaluation date",
                "answer": [{"valueDate": "2026-02-10"}],
            },
            {"linkId": "trial", "text": "Adherence trial planned", "answer": [{"valueBoolean": True}]},
        ],
    }
    report = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "subject": {"reference": urls["patient"]},
        "description": "Polysomnography report",
        "content": [{"attachment": {"contentType": "application/pdf", "title": "psg-report.pdf"}}],
    }
    return [(urls["qr"], response), (urls["doc"], report)]


def _uuid(trace: str, name: str) -> str:
    h = hashlib.sha256(f"{trace}/{name}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _coded(url: str, system: str, code: str) -> Json:
    return {"url": url, "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}


class _Fixed:
    """A clock standing still at ``at`` (moves 1 ms per reading, so versions stay ordered)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


def load_staff(ops: OpsService) -> int:
    if ops.staff():
        return 0
    added = 0
    for username, name, role, password, npi in DEMO_STAFF:
        try:
            ops.add_user(username, name, role, password, npi)
            added += 1
        except IntegrityError:  # another worker added it first
            pass
    return added


DENIALS: Final = (
    ("AA", "Six weeks of documented conservative therapy were not submitted"),
    ("BB", "The sleep study does not meet the apnea-hypopnea index threshold in the policy"),
)


def _pended_review(ops: OpsService, submission_claim: str) -> str | None:
    for entry in ops.pas.store.queue():
        if any(i.value == submission_claim for i in entry.item.claim_identifiers):
            return entry.item.review_id
    return None


def submit_case(
    ops: OpsService,
    trace: str,
    at: datetime,
    *,
    site: Site,
    codes: tuple[tuple[str, str, str], ...],
    expedited: bool = False,
    line_of_business: str = "HMO",
    birth_date: str = "1968-04-12",
    documentation: bool = False,
) -> str | None:
    """Submit a demo request as of ``at``; the review id when it pended."""
    pas = replace(ops.pas, now=_Fixed(at), validate=None)
    bundle = request_bundle(
        trace,
        site=site,
        codes=codes,
        expedited=expedited,
        line_of_business=line_of_business,
        created=at,
        birth_date=birth_date,
        documentation=documentation,
    )
    pas.submit(PasVersion.V2_2_1, bundle)
    return _pended_review(ops, trace)


def decide_case(
    ops: OpsService,
    review_id: str,
    at: datetime,
    staff: Staff,
    action: ReviewerAction,
    sequences: tuple[int, ...] = (1,),
    denial: tuple[str, str] | None = None,
) -> None:
    clocked = _clocked(ops, at)
    decisions = []
    for sequence in sequences:
        if action is ReviewerAction.DENY:
            code, text = denial or DENIALS[0]
            decisions.append(ReviewerDecision(sequence, action, Code(X12_886, code), text))
        elif action is ReviewerAction.MODIFY:
            decisions.append(
                ReviewerDecision(
                    sequence,
                    action,
                    modification=Modification(Code(CPT, "74160", "CT abdomen with contrast")),
                )
            )
        else:
            decisions.append(ReviewerDecision(sequence, action))
    submission = next((f.submission_id for f in ops.facts(open_only=True) if f.review_id == review_id), None)
    if submission is not None:
        clocked.decide(staff, submission, decisions)


def load_requests(ops: OpsService, *, now: datetime | None = None) -> int:
    """Open requests around ``now`` and a decided previous calendar year; none if any request exists."""
    if ops.store.requests():
        return 0
    current = now or ops.now()
    reviewer = Staff("reviewer", "Riley Reviewer", Role.REVIEWER)
    clinician = Staff("clinician", "Dr. Casey Clinician", Role.CLINICIAN_REVIEWER, "1922222226")
    last_year = current.year - 1
    count = 0
    # A previous calendar year: 24 requests, some approved at submission (first pass), some reviewed.
    for n in range(24):
        site = SITES[n % len(SITES)]
        received = datetime(last_year, 1 + n % 12, 3 + n, 9 + n % 7, tzinfo=UTC)
        expedited = n % 4 == 3
        trace = f"DEMO-{last_year}-{n + 1:03d}"
        if n % 6 == 0:
            # office visit: no prior authorization needed, approved at once
            submit_case(ops, trace, received, site=site, codes=((CPT, "99213", "1"),), expedited=expedited)
            count += 1
            continue
        service = SERVICES[n % len(SERVICES)]
        review_id = submit_case(ops, trace, received, site=site, codes=(service,), expedited=expedited)
        count += 1
        if review_id is None:
            continue
        hours = (5, 30, 52, 9, 70, 140, 20, 3)[n % 8] if not expedited else (4, 18, 40, 60)[n % 4]
        if n % 5 == 2:
            _extend_at(ops, review_id, received + timedelta(hours=2), reviewer)
            hours += 48
        decided = received + timedelta(hours=hours)
        if n % 7 == 4:
            decide_case(ops, review_id, decided, clinician, ReviewerAction.DENY, denial=DENIALS[n % 2])
        elif service[1] == "74170":
            decide_case(ops, review_id, decided, reviewer, ReviewerAction.MODIFY)
        else:
            decide_case(ops, review_id, decided, reviewer, ReviewerAction.APPROVE)
    # A partial approval (one item approved, one denied) and an appeal that overturned a denial.
    partial_at = datetime(last_year, 10, 6, 10, tzinfo=UTC)
    review_id = submit_case(
        ops, f"DEMO-{last_year}-101", partial_at, site=SITES[0], codes=(SERVICES[0], SERVICES[1])
    )
    count += 1
    if review_id is not None:
        clocked = _clocked(ops, partial_at + timedelta(hours=30))
        clocked.decide(
            clinician,
            _submission_of(ops, review_id),
            [
                ReviewerDecision(1, ReviewerAction.APPROVE),
                ReviewerDecision(2, ReviewerAction.DENY, Code(X12_886, DENIALS[0][0]), DENIALS[0][1]),
            ],
        )
    denied = next((f for f in ops.facts() if f.denial_reasons and f.urgency.value == "standard"), None)
    if denied is not None and denied.determined_at is not None:
        appeal_at = denied.determined_at + timedelta(days=10)
        _clocked(ops, appeal_at).appeal(clinician, denied.submission_id, "pending", "Appeal letter received")
        _clocked(ops, appeal_at + timedelta(days=5)).appeal(
            clinician, denied.submission_id, "approved", "Therapy records supplied with the appeal"
        )
    # Open work: due times spread around now (one overdue, some due within 24 hours).
    open_cases = (
        ("DEMO-OPEN-001", timedelta(days=7, hours=3), False, 0, SERVICES[0]),  # standard, overdue
        ("DEMO-OPEN-002", timedelta(hours=60), True, 1, SERVICES[2]),  # expedited, due in 12 h
        ("DEMO-OPEN-003", timedelta(days=6, hours=4), False, 3, SERVICES[1]),  # standard, due in 20 h
        ("DEMO-OPEN-004", timedelta(hours=10), True, 2, SERVICES[0]),  # expedited, due in 62 h
        ("DEMO-OPEN-005", timedelta(days=2), False, 0, SERVICES[3]),  # standard, due in 5 days
        ("DEMO-OPEN-006", timedelta(hours=3), False, 1, SERVICES[2]),
    )
    for trace, age, expedited, site_index, service in open_cases:
        line = "MCR" if site_index % 2 else "HMO"
        # DEMO-OPEN-006: a child's CPAP (another policy applies) with a DTR response and a report attached
        child = trace == "DEMO-OPEN-006"
        submit_case(
            ops,
            trace,
            current - age,
            site=SITES[site_index],
            codes=(service,),
            expedited=expedited,
            line_of_business=line,
            birth_date="2014-09-01" if child else "1968-04-12",
            documentation=child,
        )
        count += 1
    first = _pended_review(ops, "DEMO-OPEN-004")
    if first is not None:
        ops.store.assign(ops.pas.store.tenant, first, "reviewer")
    return count


def _submission_of(ops: OpsService, review_id: str) -> str:
    entry = ops.pas.store.review(review_id)
    return entry.submission_id if entry is not None else ""


def _clocked(ops: OpsService, at: datetime) -> OpsService:
    return replace(ops, now=_Fixed(at), pas=replace(ops.pas, now=_Fixed(at), validate=None))


def _extend_at(ops: OpsService, review_id: str, at: datetime, staff: Staff) -> None:
    clocked = _clocked(ops, at)
    clocked.extend(staff, _submission_of(ops, review_id), 48, "Waiting for records the provider is sending")


def load_demo(ops: OpsService, *, now: Callable[[], datetime] | None = None) -> tuple[int, int]:
    """Demo staff users and requests into an empty operations database (no staff user, no PAS request);
    (users added, requests submitted)."""
    if ops.staff() or ops.store.requests():
        return 0, 0
    return load_staff(ops), load_requests(ops, now=now() if now else None)


def load_app_demo(settings: Settings) -> tuple[int, int]:
    """The operations demo in the database ``settings`` name (``priorgate serve`` with demo content)."""
    from server.app import create_app

    app = create_app(settings)
    try:
        ops = app.state.ops
        assert isinstance(ops, OpsService)
        return load_demo(ops)
    finally:
        app.state.services.engine.dispose()


__all__ = ["DEMO_STAFF", "load_demo", "load_requests", "load_staff", "request_bundle"]
