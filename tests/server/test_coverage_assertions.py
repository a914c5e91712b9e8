"""The coverage-assertion store on both engines."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from cds_hooks import CoverageAssertion, CoverageDecision
from server.coverage_assertions import CoverageAssertionStore
from server.storage.engine import make_engine


def _decision(**overrides: Any) -> CoverageDecision:
    empty: dict[str, Any] = {f.name: () for f in fields(CoverageDecision)}
    empty.update(
        covered="covered",
        pa_needed="auth-needed",
        instructions=None,
        expiry_date=None,
        payer_id="PGDEMO",
        payer_name="PriorGate Demo Health Plan",
        rule_id="cpap",
        topic="cpap",
        title=None,
        matched_case=None,
        stale=False,
        alternate=None,
    )
    empty.update(overrides)
    return CoverageDecision(**empty)


def _assertion(assertion_id: str, questionnaires: tuple[str, ...]) -> CoverageAssertion:
    return CoverageAssertion(
        id=assertion_id,
        service_id="order-sign-crd",
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        order_reference="DeviceRequest/dr1",
        coverage_reference="Coverage/cov1",
        payer_id="PGDEMO",
        version="2.2",
        decision=_decision(questionnaires=questionnaires, doc_needed=("clinical",)),
        extension={"url": "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"},
    )


def test_saved_assertions_are_found_and_first_one_wins(database_url: str) -> None:
    engine = make_engine(database_url)
    store = CoverageAssertionStore(engine)
    cpap = "https://priorgate.org/fhir/Questionnaire/cpap|1.0.0"
    store.save([_assertion("a1", (cpap,))], "2026-03-01T12:00:00+00:00")
    store.save([_assertion("a1", ("https://other|1",)), _assertion("a2", ())], "2026-03-01T12:01:00+00:00")
    first = store.find("a1")
    assert first is not None
    assert first.questionnaires == (cpap,)
    assert first.doc_needed == ("clinical",)
    assert first.order_reference == "DeviceRequest/dr1"
    assert store.find("a2") is not None
    assert store.find("missing") is None
    assert CoverageAssertionStore(engine, tenant="other-org").find("a1") is None
    engine.dispose()


def test_created_with_microseconds_and_offset_fits_on_both_engines(database_url: str) -> None:
    # Regression: the app passes now().isoformat() (32 characters) into a 26-character column, which
    # PostgreSQL refused: every CRD hook that handed out an assertion answered 500 there.
    engine = make_engine(database_url)
    CoverageAssertionStore(engine).save([_assertion("a1", ())], "2026-03-01T12:00:00.123456+00:00")
    assert CoverageAssertionStore(engine).find("a1") is not None
    engine.dispose()
