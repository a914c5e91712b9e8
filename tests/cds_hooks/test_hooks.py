"""Every hook over HTTP, with and without prefetch, for CRD 2.0.1 and 2.2, plus the error statuses."""

from __future__ import annotations

import copy
import json
from types import ModuleType
from typing import Any

import pytest

from cds_hooks import CrdVersion, coverage_information_problems, response_problems
from cds_hooks.urls import EXT_COVERAGE_INFORMATION, SID_PAYER_ID

HOOKS = [
    "appointment-book",
    "encounter-start",
    "encounter-discharge",
    "order-dispatch",
    "order-select",
    "order-sign",
]
PRIMARY = {"appointment-book", "order-dispatch", "order-sign"}


def request_for(
    kit: ModuleType, hook: str, *, prefetch: bool, version: str, legacy_dispatch: bool = False
) -> dict[str, Any]:
    sr = kit.service_request(
        "sr1", kit.CPT, "72148", reasonCode=[{"coding": [{"system": kit.ICD10, "code": "M54.50"}]}]
    )
    dr = kit.device_request("dr1", "E0601")
    base = kit.full_prefetch() if prefetch else None
    common = {"userId": "Practitioner/prac1", "patientId": "pat1"}
    if hook in ("order-sign", "order-select"):
        context: dict[str, Any] = {
            **common,
            "encounterId": "enc1",
            "draftOrders": kit.bundle(sr, dr, kind="collection"),
        }
        if hook == "order-select":
            context["selections"] = ["ServiceRequest/sr1"]
    elif hook == "order-dispatch":
        context = {"patientId": "pat1", "performer": "Organization/imaging"}
        if legacy_dispatch:
            context["order"] = "ServiceRequest/sr1"
        else:
            context["dispatchedOrders"] = ["ServiceRequest/sr1"]
        if base is not None:
            base = {k: v for k, v in base.items() if k != "encounter"} | {"serviceRequests": kit.bundle(sr)}
    elif hook == "appointment-book":
        appointment = {
            "resourceType": "Appointment",
            "id": "ap1",
            "status": "proposed",
            "basedOn": [{"reference": "ServiceRequest/sr1"}],
            "participant": [{"actor": {"reference": "Patient/pat1"}, "status": "accepted"}],
        }
        context = {
            **common,
            "encounterId": "enc1",
            "appointments": kit.bundle(appointment, kind="collection"),
        }
        if base is not None:
            base["serviceRequests"] = kit.bundle(sr)
    else:
        context = {**common, "encounterId": "enc1"}
    return kit.hook_request(hook, context, prefetch=base, version=version)


def check_response(
    body: dict[str, Any], hook: str, version: CrdVersion, request: dict[str, Any]
) -> list[dict[str, Any]]:
    """Card rules and coverage information hold; returns the systemActions."""
    assert response_problems(body, version, primary=hook in PRIMARY) == []
    actions = body.get("systemActions", [])
    for action in actions:
        resource = action["resource"]
        extensions = [e for e in resource["extension"] if e["url"] == EXT_COVERAGE_INFORMATION]
        assert len(extensions) == 1
        assert coverage_information_problems(extensions[0], version) == []
        echoed = {k: v for k, v in resource.items() if k != "extension"}
        originals = [
            r
            for r in _resources(request)
            if r.get("resourceType") == resource["resourceType"] and r.get("id") == resource.get("id")
        ]
        assert originals, "the update targets a resource from the request"
        assert echoed == {k: v for k, v in originals[0].items() if k != "extension"}
    return actions


def _resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for value in [*request["context"].values(), *(request.get("prefetch") or {}).values()]:
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            out += [e["resource"] for e in value.get("entry", [])]
        elif isinstance(value, dict) and "resourceType" in value:
            out.append(value)
    return out


@pytest.mark.parametrize("version", ["2.0", "2.2"])
@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fetched"])
@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook(crd: Any, kit: ModuleType, hook: str, prefetch: bool, version: str) -> None:
    crd.fhir.add(
        kit.service_request(
            "sr1", kit.CPT, "72148", reasonCode=[{"coding": [{"system": kit.ICD10, "code": "M54.50"}]}]
        )
    )
    request = request_for(kit, hook, prefetch=prefetch, version=version)
    response = crd.call(f"{hook}-crd", request)
    assert response.status_code == 200, response.text
    actions = check_response(
        response.json(),
        hook,
        CrdVersion(version),
        request | {"prefetch": {"sr": kit.bundle(*crd.fhir.resources.values())}},
    )
    fetched = [
        r.url.path for r in crd.fhir.requests if r.url.host == "ehr.test" and r.url.path.startswith("/fhir")
    ]
    if prefetch:
        assert not any(p.endswith(("/Patient/pat1", "/Coverage")) for p in fetched)
    else:
        assert "/fhir/Patient/pat1" in fetched and "/fhir/Coverage" in fetched
    if hook in PRIMARY:
        assert actions, "primary hooks return coverage information"
        info = kit.coverage_information(actions[0]["resource"])
        assert info["pa-needed"] == ["auth-needed"]
        assert info["coverage"] == [{"reference": "Coverage/cov1"}]
        system = "temp" if version == "2.0" else "coverage-information-codes"
        assert system  # codes are version-specific; checked by coverage_information_problems


def test_order_dispatch_legacy_context(crd: Any, kit: ModuleType) -> None:
    crd.fhir.add(kit.service_request("sr1", kit.CPT, "72148"))
    request = request_for(kit, "order-dispatch", prefetch=False, version="2.0", legacy_dispatch=True)
    response = crd.call("order-dispatch-crd", request)
    assert response.status_code == 200, response.text
    assert response.json()["systemActions"][0]["resource"]["id"] == "sr1"


def test_discovery_lists_six_services_from_the_registry(crd: Any, kit: ModuleType) -> None:
    response = kit.run(crd.get("/cds-services"))
    assert response.status_code == 200
    services = response.json()["services"]
    assert sorted(s["hook"] for s in services) == sorted(HOOKS)
    for service in services:
        assert service["id"] == f"{service['hook']}-crd" and service["description"]
        assert service["prefetch"]["coverage"] == "Coverage?patient={{context.patientId}}&status=active"
        ext = service["extension"]
        assert ext["davinci-crd.version"] == ["2.0", "2.2"]
        options = ext["davinci-crd.configuration-options"]
        codes = [o["code"] for o in options]
        assert len(codes) == len(set(codes)) and "max-cards" in codes
        assert all({"code", "type", "name", "description", "default"} <= set(o) for o in options)
        # The discovery document and the routes come from the same registry.
        assert crd.services.spec(service["id"]).hook == service["hook"]


def test_cards_alternate_companions_external_reference_instructions(crd: Any, kit: ModuleType) -> None:
    ct = kit.service_request("ct1", kit.CPT, "74170")
    cpap = kit.device_request("dr1", "E0601")
    request = kit.order_sign(ct, cpap)
    response = crd.call("order-sign-crd", request)
    body = response.json()
    check_response(body, "order-sign", CrdVersion.V2_2, request)
    topics = [c["source"]["topic"]["code"] for c in body["cards"]]
    assert topics[:2] == ["therapy-alternatives-opt", "clinical-reminder"]
    assert {"guideline", "claim"} <= set(topics)
    alternate = body["cards"][0]["suggestions"][0]["actions"]
    assert len(alternate) == 1 and alternate[0]["type"] == "update"
    assert alternate[0]["resource"]["id"] == "ct1"
    assert alternate[0]["resource"]["code"]["coding"][0]["code"] == "74160"
    companions = body["cards"][1]["suggestions"][0]["actions"]
    assert [a["type"] for a in companions] == ["create", "create"]
    assert {a["resource"]["codeCodeableConcept"]["coding"][0]["code"] for a in companions} == {
        "A7030",
        "A7037",
    }
    external = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "guideline")
    assert all(link["type"] == "absolute" for link in external["links"])
    instructions = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "claim")
    assert "links" not in instructions and "suggestions" not in instructions
    assert all(c["source"]["label"] == "PriorGate Demo Health Plan" for c in body["cards"])
    assert all(
        c["source"]["topic"]["system"] == "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
        for c in body["cards"]
    )


def test_configuration_options_are_obeyed_and_unknown_ignored(crd: Any, kit: ModuleType) -> None:
    orders = (kit.service_request("ct1", kit.CPT, "74170"), kit.device_request("dr1", "E0601"))
    config = {
        "coverage-info": False,
        "guideline": False,
        "max-cards": 2,
        "no-such-option": True,
        "claim": "yes",
    }
    body = crd.call("order-sign-crd", kit.order_sign(*orders, configuration=config)).json()
    assert body["systemActions"] == []
    assert len(body["cards"]) == 2
    assert "guideline" not in [c["source"]["topic"]["code"] for c in body["cards"]]


def test_version_20_card_topics_and_codes(crd: Any, kit: ModuleType) -> None:
    request = kit.order_sign(kit.device_request("dr1", "E0601"), version="2.0")
    body = crd.call("order-sign-crd", request).json()
    check_response(body, "order-sign", CrdVersion.V2_0, request)
    assert {c["source"]["topic"]["system"] for c in body["cards"]} == {
        "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
    }


def test_requests_in_sequence_do_not_leak_state(crd: Any, kit: ModuleType) -> None:
    first = crd.call("order-sign-crd", kit.order_sign(kit.device_request("dr1", "E0601"))).json()
    second = crd.call("order-sign-crd", kit.order_sign(kit.service_request("sr9", kit.CPT, "99213"))).json()
    again = crd.call("order-sign-crd", kit.order_sign(kit.device_request("dr1", "E0601"))).json()
    assert second["cards"] == []
    assert [a["resource"]["id"] for a in second["systemActions"]] == ["sr9"]
    assert "dr1" not in json.dumps(second)
    strip = lambda body: [a["resource"] for a in body["systemActions"]]  # noqa: E731
    assert strip(first) == strip(again)  # stable coverage-assertion-id for the same order and answer


def test_assertions_are_handed_to_the_server(crd: Any, kit: ModuleType) -> None:
    crd.call(
        "order-sign-crd",
        kit.order_sign(
            kit.service_request(
                "sr1", kit.CPT, "27447", locationCode=[{"coding": [{"system": kit.POS, "code": "22"}]}]
            )
        ),
    )
    [result] = crd.results
    [caller] = crd.callers
    assert caller.iss == kit.ISS and caller.jti
    [assertion] = result.assertions
    info = kit.coverage_information(result.response["systemActions"][0]["resource"])
    assert info["coverage-assertion-id"] == [assertion.id]
    assert assertion.order_reference == "ServiceRequest/sr1" and assertion.payer_id == "PGDEMO"
    assert assertion.decision.rule_id == "total-knee-arthroplasty"


def test_decimals_are_echoed_exactly(crd: Any, kit: ModuleType) -> None:
    order = kit.service_request("sr1", kit.CPT, "99213", quantityQuantity={"value": 1.50})
    raw = json.dumps(kit.order_sign(order)).replace('"value": 1.5', '"value": 1.50')
    response = crd.call("order-sign-crd", None, raw=raw.encode())
    assert response.status_code == 200
    assert '"value":1.50' in response.text


def test_history_is_queried_only_when_a_rule_needs_it(crd: Any, kit: ModuleType) -> None:
    crd.fhir.add(
        {
            "resourceType": "MedicationRequest",
            "id": "old1",
            "status": "completed",
            "intent": "order",
            "subject": {"reference": "Patient/pat1"},
            "medicationCodeableConcept": {"coding": [{"system": kit.RXNORM, "code": "6851"}]},
        }
    )
    body = crd.call("order-sign-crd", kit.order_sign(kit.medication_request("mr1"))).json()
    info = kit.coverage_information(body["systemActions"][0]["resource"])
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["auth-needed"]
    assert any(r.url.path == "/fhir/MedicationRequest" for r in crd.fhir.requests)
    crd.fhir.requests.clear()
    crd.call("order-sign-crd", kit.order_sign(kit.service_request("sr1", kit.CPT, "99213")))
    assert not any(r.url.path == "/fhir/MedicationRequest" for r in crd.fhir.requests)


# -- errors ----------------------------------------------------------------------------------------


def _status(
    crd: Any, kit: ModuleType, body: Any, service: str = "order-sign-crd", raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    response = crd.call(service, body, raw=raw)
    payload = response.json()
    if response.status_code != 200:
        assert payload["resourceType"] == "OperationOutcome", payload
    return response.status_code, payload


def _with_coverage(kit: ModuleType, *coverages: dict[str, Any]) -> dict[str, Any]:
    request = kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))
    request["prefetch"]["coverage"] = kit.bundle(*coverages)
    return request


def test_400_malformed(crd: Any, kit: ModuleType) -> None:
    assert _status(crd, kit, None, raw=b"{not json")[0] == 400
    assert _status(crd, kit, None, raw=b"[1, 2]")[0] == 400
    assert _status(crd, kit, {"hook": "order-sign"})[0] == 400
    wrong_hook = kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))
    assert _status(crd, kit, wrong_hook, service="order-select-crd")[0] == 400
    no_orders = kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))
    del no_orders["context"]["draftOrders"]
    assert _status(crd, kit, no_orders)[0] == 400


def test_400_for_wrong_missing_or_duplicate_coverage(crd: Any, kit: ModuleType) -> None:
    other = copy.deepcopy(kit.COVERAGE)
    other["payor"] = [{"identifier": {"system": SID_PAYER_ID, "value": "ELSEWHERE"}}]
    second = copy.deepcopy(kit.COVERAGE) | {"id": "cov2"}
    unidentified = copy.deepcopy(kit.COVERAGE) | {"payor": [{"display": "Someone"}]}
    for coverages, text in (
        ((), "No active Coverage"),
        ((kit.COVERAGE, second), "2 active Coverages"),
        ((other,), "does not handle"),
        ((unidentified,), "no payer identifier"),
    ):
        status, outcome = _status(crd, kit, _with_coverage(kit, *coverages))
        assert status == 400 and text in outcome["issue"][0]["diagnostics"], outcome


def test_payer_identifier_on_the_referenced_organization(crd: Any, kit: ModuleType) -> None:
    coverage = copy.deepcopy(kit.COVERAGE) | {"payor": [{"reference": "Organization/payer1"}]}
    request = _with_coverage(kit, coverage)
    request["prefetch"]["organizations"] = kit.bundle(
        {
            "resourceType": "Organization",
            "id": "payer1",
            "identifier": [{"system": SID_PAYER_ID, "value": "PGDEMO"}],
        }
    )
    assert _status(crd, kit, request)[0] == 200


def test_412_without_prefetch_when_the_fhir_server_fails(crd: Any, kit: ModuleType) -> None:
    crd.fhir.fail = True
    status, outcome = _status(
        crd, kit, kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"), prefetch=False)
    )
    assert status == 412 and "patient" in outcome["issue"][0]["diagnostics"]
    no_server = kit.order_sign(
        kit.service_request("sr1", kit.CPT, "99213"), prefetch=False, fhir_server=False
    )
    assert _status(crd, kit, no_server)[0] == 412
    # With prefetch the failing server does not matter.
    assert _status(crd, kit, kit.order_sign(kit.service_request("sr1", kit.CPT, "99213")))[0] == 200


def test_422_for_crd_rule_violations(crd: Any, kit: ModuleType) -> None:
    assert (
        _status(crd, kit, kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"), version="1.0"))[0]
        == 422
    )
    searchset = kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))
    searchset["context"]["draftOrders"]["type"] = "searchset"
    assert _status(crd, kit, searchset)[0] == 422
    no_status = kit.order_sign(
        {k: v for k, v in kit.service_request("sr1", kit.CPT, "99213").items() if k != "status"}
    )
    assert _status(crd, kit, no_status)[0] == 422
    select = request_for(kit, "order-select", prefetch=True, version="2.2")
    select["context"]["selections"] = ["ServiceRequest/elsewhere"]
    assert _status(crd, kit, select, service="order-select-crd")[0] == 422


def test_unknown_service_is_404(crd: Any, kit: ModuleType) -> None:
    assert _status(crd, kit, {}, service="nope")[0] == 404


def test_feedback_is_stored(crd: Any, kit: ModuleType) -> None:
    feedback = {
        "feedback": [
            {
                "card": "card-1",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "s-1"}],
                "outcomeTimestamp": "2026-11-25T09:00:00Z",
            }
        ]
    }
    response = kit.run(crd.post("/cds-services/order-sign-crd/feedback", feedback))
    assert response.status_code == 200
    [(service_id, item, _)] = crd.feedback.items
    assert service_id == "order-sign-crd" and item.card == "card-1"
    bad = kit.run(
        crd.post("/cds-services/order-sign-crd/feedback", {"feedback": [{"card": "x", "outcome": "maybe"}]})
    )
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_payer_organization_read_from_the_fhir_server_when_needed(crd: Any, kit: ModuleType) -> None:
    crd.fhir.add(
        {
            "resourceType": "Organization",
            "id": "payer7",
            "identifier": [{"system": SID_PAYER_ID, "value": "PGDEMO"}],
        }
    )
    coverage = copy.deepcopy(kit.COVERAGE) | {"payor": [{"reference": "Organization/payer7"}]}
    assert _status(crd, kit, _with_coverage(kit, coverage))[0] == 200
    assert any(r.url.path == "/fhir/Organization/payer7" for r in crd.fhir.requests)
    crd.fhir.requests.clear()
    assert _status(crd, kit, _with_coverage(kit, kit.COVERAGE))[0] == 200  # identifier on the reference
    assert not any("Organization" in r.url.path for r in crd.fhir.requests)


def test_fast_uuid5_matches_the_standard_library() -> None:
    import uuid

    from cds_hooks.service import _ASSERTION_NAMESPACE, uuid5_text

    for seed in ("", "a", "card|é|ServiceRequest/1"):
        assert uuid5_text(seed) == str(uuid.uuid5(_ASSERTION_NAMESPACE, seed))


def test_codes_behind_medication_and_device_references(crd: Any, kit: ModuleType) -> None:
    device = {
        "resourceType": "Device",
        "id": "dev1",
        "type": {"coding": [{"system": kit.HCPCS, "code": "E0601"}]},
    }
    order = kit.device_request("dr1", "E0601")
    del order["codeCodeableConcept"]
    order["codeReference"] = {"reference": "Device/dev1"}
    request = kit.order_sign(order)
    request["prefetch"]["devices"] = kit.bundle(device)
    body = crd.call("order-sign-crd", request).json()
    info = kit.coverage_information(body["systemActions"][0]["resource"])
    assert info["pa-needed"] == ["auth-needed"]  # the CPAP rule, found through the Device
    assert info["questionnaire"] == ["https://priorgate.org/fhir/Questionnaire/cpap|1.0.0"]
    crd.fhir.add(device)
    no_prefetch = kit.order_sign(order, prefetch=False)
    body = crd.call("order-sign-crd", no_prefetch).json()
    assert kit.coverage_information(body["systemActions"][0]["resource"])["pa-needed"] == ["auth-needed"]
    assert any(r.url.path == "/fhir/Device" for r in crd.fhir.requests)


def test_null_prefetch_means_no_data_not_412(crd: Any, kit: ModuleType) -> None:
    request = kit.order_sign(kit.service_request("sr1", kit.CPT, "99213"))
    request["prefetch"]["coverage"] = None
    status, outcome = _status(crd, kit, request)
    assert status == 400 and "No active Coverage" in outcome["issue"][0]["diagnostics"]
    request = kit.order_sign(kit.service_request("sr1", kit.CPT, "72148"))
    request["prefetch"]["patient"] = None
    assert _status(crd, kit, request)[0] == 200


def test_unstated_version_is_answered_as_crd_20(crd: Any, kit: ModuleType) -> None:
    request = kit.order_sign(kit.service_request("sr1", kit.CPT, "27447"), version=None)
    body = crd.call("order-sign-crd", request).json()
    info = kit.coverage_information(body["systemActions"][0]["resource"])
    assert info["doc-needed"] == ["both"]  # clinical + admin, 2.0.1 style
    assert "detail" not in info and "expiry-date" not in info
    assert {c["source"]["topic"]["system"] for c in body["cards"]} == {
        "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
    }
    assert kit.run(crd.services.call("order-sign-crd", request)).version is CrdVersion.V2_0
