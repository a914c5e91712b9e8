"""Prefetch tokens (CDS Hooks 2.0, 3.0 simple FHIRPath, CRD 2.0.1 shorthand) and hydration."""

from __future__ import annotations

from datetime import date
from types import ModuleType

import httpx
import pytest

from cds_hooks import FhirSource, PrefetchHydrator, render_template
from cds_hooks.hooks import HOOK_SPECS
from igs.outcome import OperationOutcomeError

TODAY = date(2026, 11, 25)


def sign_context(kit: ModuleType) -> dict[str, object]:
    return {
        "userId": "PractitionerRole/role1",
        "patientId": "pat1",
        "encounterId": "enc1",
        "draftOrders": kit.bundle(
            kit.service_request("sr1", kit.CPT, "72148", requester={"reference": "PractitionerRole/role1"}),
            kit.device_request("dr1", "E0601", codeReference={"reference": "Device/dev9"}),
            kit.medication_request(
                "mr1", medicationReference={"reference": "http://ehr/fhir/Medication/med7"}
            ),
            kind="collection",
        ),
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/pat1"),
        ("PractitionerRole/{{userPractitionerRoleId}}", "PractitionerRole/role1"),
        ("Practitioner/{{userPractitionerId}}", None),  # the user is a PractitionerRole
        ("ServiceRequest?_id={{context.draftOrders.ServiceRequest.id}}", "ServiceRequest?_id=sr1"),
        (
            "Device?_id={{context.draftOrders.entry.resource.ofType(DeviceRequest).code.resolve().id}}",
            "Device?_id=dev9",
        ),
        (
            "Medication?_id={{context.draftOrders.entry.resource.ofType(MedicationRequest).medication.resolve().id}}",
            "Medication?_id=med7",
        ),
        (
            "X?_id={{context.draftOrders.entry.resource.ofType(ServiceRequest).id|"
            "context.draftOrders.entry.resource.ofType(DeviceRequest).id}}",
            "X?_id=sr1,dr1",
        ),
        ("Observation?date=gt{{today() - 90 days}}", "Observation?date=gt2026-08-27"),
    ],
)
def test_render_template(kit: ModuleType, template: str, expected: str | None) -> None:
    assert render_template(template, sign_context(kit), {}, TODAY) == expected


def test_prefetch_key_variables(kit: ModuleType) -> None:
    prefetch = {
        "practitionerRoles": kit.bundle(
            {
                "resourceType": "PractitionerRole",
                "id": "role1",
                "practitioner": {"reference": "Practitioner/p5"},
            }
        )
    }
    template = "Practitioner?_id={{%practitionerRoles.entry.resource.practitioner.resolve().id}}"
    assert render_template(template, sign_context(kit), prefetch, TODAY) == "Practitioner?_id=p5"


def test_standard_templates_render_for_order_sign(kit: ModuleType) -> None:
    spec = next(s for s in HOOK_SPECS if s.hook == "order-sign")
    rendered = {k: render_template(t, sign_context(kit), {}, TODAY) for k, t in spec.prefetch.items()}
    assert rendered["patient"] == "Patient/pat1"
    assert rendered["coverage"] == "Coverage?patient=pat1&status=active"
    assert rendered["practitionerRoles"] == "PractitionerRole?_id=role1"
    assert rendered["devices"] == "Device?_id=dev9"


def test_dispatch_templates_accept_both_context_shapes(kit: ModuleType) -> None:
    spec = next(s for s in HOOK_SPECS if s.hook == "order-dispatch")
    new = {
        "patientId": "pat1",
        "dispatchedOrders": ["ServiceRequest/a", "MedicationRequest/b"],
        "performer": "Organization/o",
    }
    old = {"patientId": "pat1", "order": "ServiceRequest/a", "performer": "Organization/o"}
    for context in (new, old):
        assert render_template(spec.prefetch["serviceRequests"], context, {}, TODAY) == "ServiceRequest?_id=a"
    assert render_template(spec.prefetch["medicationRequests"], old, {}, TODAY) is None


def _hydrator(fhir: object) -> PrefetchHydrator:
    return PrefetchHydrator(httpx.AsyncClient(transport=httpx.MockTransport(fhir.handler)), timeout=1.0)  # type: ignore[attr-defined]


def test_hydration_fetches_only_missing_keys(kit: ModuleType, fhir: object) -> None:
    spec = next(s for s in HOOK_SPECS if s.hook == "order-sign")
    given = {"patient": kit.PATIENT, "encounter": None}
    result = kit.run(
        _hydrator(fhir).hydrate(
            spec.prefetch,
            sign_context(kit),
            given,
            FhirSource(kit.EHR, kit.TOKEN),
            TODAY,
            required=("patient", "coverage"),
        )
    )
    paths = [r.url.path + "?" + r.url.query.decode() for r in fhir.requests]  # type: ignore[attr-defined]
    assert result["patient"] is given["patient"]
    assert result["coverage"]["entry"][0]["resource"]["id"] == "cov1"
    assert "encounter" not in result  # sent as null: the client has no data, nothing to fetch
    assert not any(p.startswith("/fhir/Patient") for p in paths)
    assert all(r.headers["authorization"] == f"Bearer {kit.TOKEN}" for r in fhir.requests)  # type: ignore[attr-defined]


def test_operation_outcome_in_prefetch_is_refetched(kit: ModuleType, fhir: object) -> None:
    spec = next(s for s in HOOK_SPECS if s.hook == "order-sign")
    given = {"patient": {"resourceType": "OperationOutcome", "issue": []}}
    result = kit.run(
        _hydrator(fhir).hydrate(
            spec.prefetch, sign_context(kit), given, FhirSource(kit.EHR, kit.TOKEN), TODAY
        )
    )
    assert result["patient"]["id"] == "pat1"


def test_412_only_when_absent_and_the_query_fails(kit: ModuleType, fhir: object) -> None:
    spec = next(s for s in HOOK_SPECS if s.hook == "order-sign")
    fhir.fail = True  # type: ignore[attr-defined]
    source = FhirSource(kit.EHR, kit.TOKEN)
    with pytest.raises(OperationOutcomeError) as err:
        kit.run(
            _hydrator(fhir).hydrate(
                spec.prefetch, sign_context(kit), {}, source, TODAY, required=("patient", "coverage")
            )
        )
    assert err.value.failure.value == "precondition-failed"
    # Same failing server, but the client prefetched what is required: no error.
    given = {"patient": kit.PATIENT, "coverage": kit.bundle(kit.COVERAGE)}
    result = kit.run(
        _hydrator(fhir).hydrate(
            spec.prefetch, sign_context(kit), given, source, TODAY, required=("patient", "coverage")
        )
    )
    assert set(result) >= {"patient", "coverage"}
