"""Payer-to-Payer end to end with security on (SQLite and PostgreSQL): a new payer's client matches a
member at the old payer with ``$member-match`` (an HRex Consent naming it by NPI), finds its Payer-to-Payer
Group by search, exports it and downloads the member's Patient, Coverage and approved PA, but not the
denied PA, not the PA older than five years, and not a member whose Consent names another payer. Every
step is audited. A third payer neither reads nor exports the new payer's Group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.pas import urls
from server.security.keys import SigningKey

from .conftest import Clock
from .secured_app import BASE, FHIR_JSON, Client, SecuredApp, register_clients, secured_client

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
OLD_PAYER = "org-old-payer"
NEW_PAYER = "org-new-payer"
THIRD_PAYER = "org-third-payer"
MEMBER = "https://priorgate.org/fhir/sid/member"
PAYER_ID = "https://priorgate.org/fhir/sid/payer-id"
NPI = "http://hl7.org/fhir/sid/us-npi"
P2P_CODE = "https://priorgate.org/fhir/CodeSystem/export-purpose|payer-to-payer"
PAYER_SCOPES = "system/*.rs system/Consent.c"
CLIENTS = {
    "new-payer": Client((NEW_PAYER,), PAYER_SCOPES),
    "third-payer": Client((THIRD_PAYER,), PAYER_SCOPES),
    "admin": Client(("payer",), "system/*.cruds", ("admin",)),
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, SigningKey], Path]:
    folder = tmp_path_factory.mktemp("p2p-flow")
    return register_clients(folder, CLIENTS), folder


def _member(pid: str, member_id: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": MEMBER, "value": member_id}],
        "name": [{"family": family, "given": ["Pat"]}],
        "birthDate": "1970-01-01",
    }


def _pa(cid: str, patient: str, served: str, action: str) -> list[dict[str, Any]]:
    """A PA request and its answer (X12 review action ``action``: A1 approved, A3 denied)."""
    claim = {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "use": "preauthorization",
        "patient": {"reference": f"Patient/{patient}"},
        "created": served,
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "1"}]},
                "servicedDate": served,
            }
        ],
    }
    action_extension = {
        "url": urls.EXT_REVIEW_ACTION,
        "extension": [
            {
                "url": urls.EXT_REVIEW_ACTION_CODE,
                "valueCodeableConcept": {"coding": [{"system": urls.CS_X12_ACTION_CODE, "code": action}]},
            }
        ],
    }
    answer = {
        "resourceType": "ClaimResponse",
        "id": f"{cid}-answer",
        "status": "active",
        "use": "preauthorization",
        "outcome": "complete",
        "patient": {"reference": f"Patient/{patient}"},
        "request": {"reference": f"Claim/{cid}"},
        "created": served,
        "item": [
            {
                "itemSequence": 1,
                "adjudication": [{"extension": [action_extension], "category": {"coding": [{"code": "x"}]}}],
            }
        ],
    }
    return [claim, answer]


def _role(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _match_input(member_id: str, family: str, recipient: dict[str, Any]) -> dict[str, Any]:
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": _role("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [_role("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IDSCL")],
        "patient": {"reference": "Patient/1"},
        "policy": [
            {"uri": "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html#regular"}
        ],
        "provision": {
            "type": "permit",
            "period": {"start": "2026-01-01", "end": "2026-12-31"},
            "actor": [
                {
                    "role": _role(
                        "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "performer"
                    ),
                    "reference": {"identifier": {"system": PAYER_ID, "value": "OLDPAYER"}},
                },
                {
                    "role": _role("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                    "reference": recipient,
                },
            ],
            "action": [_role("http://terminology.hl7.org/CodeSystem/consentaction", "disclose")],
        },
    }
    patient = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Pat"]}],
        "birthDate": "1970-01-01",
    }
    coverage = {
        "resourceType": "Coverage",
        "identifier": [{"value": member_id}],
        "status": "active",
        "beneficiary": {"reference": "Patient/1"},
        "payor": [{"display": "Old Health Plan"}],
    }
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberPatient", "resource": patient},
            {"name": "CoverageToMatch", "resource": coverage},
            {"name": "Consent", "resource": consent},
        ],
    }


class Payers(SecuredApp):
    def match(self, client_id: str, body: dict[str, Any]) -> Any:
        headers = self.as_(client_id) | FHIR_JSON
        return self.http.post("/fhir/Patient/$member-match", content=orjson.dumps(body), headers=headers)

    def audit_events(self, code: str) -> list[dict[str, Any]]:
        headers = self.as_("admin")
        found = self.http.get(f"/fhir/AuditEvent?_count=200&type={code}", headers=headers).json()
        return [e["resource"] for e in found.get("entry", ())]

    def subtyped(self, code: str) -> list[dict[str, Any]]:
        headers = self.as_("admin")
        found = self.http.get("/fhir/AuditEvent?_count=200", headers=headers).json()
        return [
            e["resource"]
            for e in found.get("entry", ())
            if any(c.get("code") == code for c in e["resource"].get("subtype", ()))
        ]


@pytest.fixture
def payers(database_url: str, clock: Clock, keys: tuple[dict[str, SigningKey], Path]) -> Iterator[Payers]:
    by_client, folder = keys
    with secured_client(database_url, clock, folder, by_client, CLIENTS) as http:
        found = Payers(http, by_client, clock, CLIENTS)
        # the payer directory: the new payer known by its NPI and payer id, the third by its payer id
        found.put(
            {
                "resourceType": "Organization",
                "id": NEW_PAYER,
                "name": "New Health Plan",
                "identifier": [{"system": NPI, "value": "1234567893"}, {"system": PAYER_ID, "value": "NEW"}],
            }
        )
        found.put(
            {
                "resourceType": "Organization",
                "id": THIRD_PAYER,
                "name": "Third Health Plan",
                "identifier": [{"system": PAYER_ID, "value": "THIRD"}],
            }
        )
        # the old payer's members and their PA history (clock: 2026-03-01)
        old = [
            _member("m1", "OLD-1", "First"),
            _member("m2", "OLD-2", "Second"),
            {
                "resourceType": "Coverage",
                "id": "m1-coverage",
                "status": "active",
                "beneficiary": {"reference": "Patient/m1"},
                "payor": [{"identifier": {"system": PAYER_ID, "value": "OLDPAYER"}}],
            },
            *_pa("m1-approved", "m1", "2026-01-15", "A1"),
            *_pa("m1-denied", "m1", "2026-01-20", "A3"),
            *_pa("m1-old", "m1", "2020-06-01", "A1"),
            *_pa("m2-approved", "m2", "2026-01-15", "A1"),
        ]
        for resource in old:
            found.put(resource, tenant=OLD_PAYER)
        yield found


def _group(payers: Payers, client_id: str, organization: str) -> Any:
    search = f"/fhir/Group?managing-entity=Organization/{organization}&code={P2P_CODE}"
    return payers.http.get(search, headers=payers.as_(client_id))


def test_a_second_payer_matches_a_member_and_exports_their_history(payers: Payers) -> None:
    # 1. the new payer matches its member (the HRex Consent names it by its NPI)
    npi = {"identifier": {"system": NPI, "value": "1234567893"}}
    matched = payers.match("new-payer", _match_input("OLD-1", "First", npi))
    assert matched.status_code == 200, matched.text
    assert matched.json()["parameter"][0]["valueIdentifier"]["value"] == "OLD-1"
    again = payers.match("new-payer", _match_input("OLD-1", "First", npi))
    assert again.status_code == 200
    # the second member matched by the third payer, with a Consent naming the third payer
    third = payers.match(
        "third-payer", _match_input("OLD-2", "Second", {"reference": f"Organization/{THIRD_PAYER}"})
    )
    assert third.status_code == 200, third.text
    # a Consent naming another payer never opens anything to the new payer: 422, nothing stored
    other = payers.match(
        "new-payer", _match_input("OLD-2", "Second", {"reference": f"Organization/{THIRD_PAYER}"})
    )
    assert other.status_code == 422

    # 2. it finds its Payer-to-Payer Group by search: one Group, the member once
    found = _group(payers, "new-payer", NEW_PAYER)
    assert found.status_code == 200 and found.json()["total"] == 1
    group = found.json()["entry"][0]["resource"]
    assert group["managingEntity"] == {"reference": f"Organization/{NEW_PAYER}"}
    assert group["member"] == [{"entity": {"reference": "Patient/m1"}}]
    # the old payer's administrator adds the third payer's member by hand: the Consent still decides
    group["member"].append({"entity": {"reference": "Patient/m2"}})
    payers.put(group)

    # 3. export, poll, download
    new_payer = payers.as_("new-payer")
    kickoff = payers.http.get(f"/fhir/Group/{group['id']}/$export", headers=new_payer | ASYNC)
    assert kickoff.status_code == 202, kickoff.text
    status = kickoff.headers["content-location"].removeprefix(BASE)
    assert payers.http.get(status, headers=new_payer).status_code == 202
    payers.run_exports()
    done = payers.http.get(status, headers=new_payer)
    assert done.status_code == 200, done.text
    exported: set[str] = set()
    for output in done.json()["output"]:
        file = payers.http.get(output["url"].removeprefix(BASE), headers=new_payer)
        assert file.status_code == 200
        exported |= {
            f"{r['resourceType']}/{r['id']}" for r in map(orjson.loads, file.content.splitlines()) if r
        }
    assert exported == {
        "Patient/m1",
        "Coverage/m1-coverage",
        "Claim/m1-approved",
        "ClaimResponse/m1-approved-answer",
    }

    # 4. every step is audited
    matches = payers.subtyped("$member-match")
    group_ref = f"Group/{group['id']}"
    new_payer_matches = [
        e
        for e in matches
        if any(x.get("what", {}).get("reference") == group_ref for x in e.get("entity", ()))
    ]
    assert len(new_payer_matches) == 2
    assert len(payers.audit_events("bulk-export")) == 1
    assert len(payers.audit_events("bulk-download")) == len(done.json()["output"])
    decisions = payers.audit_events("consent-decision")
    left_out = {x["what"]["reference"] for e in decisions for x in e["entity"] if "what" in x}
    assert "Patient/m2" in left_out and "Patient/m1" not in left_out


def test_a_third_payer_can_neither_read_nor_export_the_new_payers_group(payers: Payers) -> None:
    npi = {"identifier": {"system": NPI, "value": "1234567893"}}
    assert payers.match("new-payer", _match_input("OLD-1", "First", npi)).status_code == 200
    (entry,) = _group(payers, "new-payer", NEW_PAYER).json()["entry"]
    group_id = entry["resource"]["id"]
    third = payers.as_("third-payer")
    assert payers.http.get(f"/fhir/Group/{group_id}", headers=third).status_code == 404
    assert _group(payers, "third-payer", NEW_PAYER).json()["total"] == 0
    refused = payers.http.get(f"/fhir/Group/{group_id}/$export", headers=third | ASYNC)
    assert refused.status_code == 404
    assert refused.json()["resourceType"] == "OperationOutcome"
    # nor write into it through the API (Groups stay a payer-administrator type)
    body = orjson.dumps(entry["resource"])
    new_payer = payers.as_("new-payer") | FHIR_JSON
    assert payers.http.put(f"/fhir/Group/{group_id}", content=body, headers=new_payer).status_code == 403
