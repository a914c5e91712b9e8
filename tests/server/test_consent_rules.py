"""Consent decisions (Provider Access opt-out, Payer-to-Payer opt-in) and the PA content rules of the
export (denied, partly approved, drug requests), as pure functions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from server.bulk.content import is_denied, is_drug_claim, served_on_or_after, without_cost_sharing
from server.consent.codes import PARTICIPATION_TYPE_SYSTEM
from server.consent.decision import Payer, Recorded
from server.consent.decision import payer_to_payer_opted_in as _opted_in
from server.consent.decision import provider_access_opted_out as _opted_out
from server.pas import urls
from server.search.values import timestamp

from . import bulk_fixtures as data

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MEMBER_SERVICES = "payer"


def provider_access_opted_out(consents: list[dict[str, object]], now: datetime) -> bool:
    return _opted_out([Recorded(MEMBER_SERVICES, c) for c in consents], now)


def payer_to_payer_opted_in(consents: list[dict[str, object]], payer: Payer, now: datetime) -> bool:
    return _opted_in([Recorded(MEMBER_SERVICES, c) for c in consents], payer, now)


NEW_PAYER = Payer(frozenset({"Organization/org-new-payer"}), frozenset({data.NEW_PAYER_ID}))


def test_a_deny_marked_for_provider_access_opts_out() -> None:
    assert provider_access_opted_out([data.opt_out("c1", "p1")], NOW) is True
    assert provider_access_opted_out([], NOW) is False


def test_an_inactive_opt_out_or_a_later_permit_opts_back_in() -> None:
    inactive = data.opt_out("c1", "p1") | {"status": "inactive"}
    assert provider_access_opted_out([inactive], NOW) is False
    later = data.opt_out("c2", "p1", kind="permit", when="2026-02-01")
    assert provider_access_opted_out([data.opt_out("c1", "p1"), later], NOW) is False
    earlier = data.opt_out("c0", "p1", kind="permit", when="2025-01-01")
    assert provider_access_opted_out([earlier, data.opt_out("c1", "p1")], NOW) is True


def test_a_permit_recorded_by_someone_else_does_not_lift_an_opt_out() -> None:
    deny = Recorded(MEMBER_SERVICES, data.opt_out("c1", "p1"))
    provider_permit = Recorded("org-clinic", data.opt_out("c2", "p1", kind="permit", when="2026-02-01"))
    assert _opted_out([deny, provider_permit], NOW) is True
    own_permit = Recorded(MEMBER_SERVICES, data.opt_out("c3", "p1", kind="permit", when="2026-02-01"))
    assert _opted_out([deny, provider_permit, own_permit], NOW) is False


def test_an_unmarked_deny_is_not_a_provider_access_opt_out() -> None:
    unmarked = data.opt_out("c1", "p1")
    del unmarked["category"]
    assert provider_access_opted_out([unmarked], NOW) is False
    by_purpose = copy.deepcopy(unmarked)
    by_purpose["provision"]["purpose"] = [
        {"system": "https://priorgate.org/fhir/CodeSystem/payer-api-consent", "code": "provider-access"}
    ]
    assert provider_access_opted_out([by_purpose], NOW) is True


def test_hrex_opt_in_names_the_payer_by_identifier_or_reference() -> None:
    assert payer_to_payer_opted_in([data.hrex_opt_in("c", "p1")], NEW_PAYER, NOW) is True
    by_reference = data.hrex_opt_in("c", "p1")
    by_reference["provision"]["actor"][0]["reference"] = {"reference": "Organization/org-new-payer"}
    assert payer_to_payer_opted_in([by_reference], NEW_PAYER, NOW) is True
    other = Payer(frozenset({"Organization/x"}), frozenset({"X"}))
    assert payer_to_payer_opted_in([data.hrex_opt_in("c", "p1")], other, NOW) is False


def test_hrex_opt_in_needs_policy_permit_period_and_recipient_role() -> None:
    base = data.hrex_opt_in("c", "p1")
    expired = data.hrex_opt_in("c", "p1", end="2026-01-31")
    wrong_policy = copy.deepcopy(base)
    wrong_policy["policy"] = [{"uri": "http://example.org/policy"}]
    deny = copy.deepcopy(base)
    deny["provision"]["type"] = "deny"
    no_period = copy.deepcopy(base)
    del no_period["provision"]["period"]
    author = copy.deepcopy(base)
    author["provision"]["actor"][0]["role"] = {
        "coding": [{"system": PARTICIPATION_TYPE_SYSTEM, "code": "AUT"}]
    }
    inactive = base | {"status": "inactive"}
    for consent in (expired, wrong_policy, deny, no_period, author, inactive):
        assert payer_to_payer_opted_in([consent], NEW_PAYER, NOW) is False


def _response(*actions: str) -> dict[str, object]:
    response = data._claim_response("r", "c", "p1", actions[0])
    item = response["item"][0]  # type: ignore[index]
    response["item"] = [
        item | {"itemSequence": n + 1, "adjudication": _adjudication(a)} for n, a in enumerate(actions)
    ]
    return response


def _adjudication(action: str) -> list[dict[str, object]]:
    code = {"url": urls.EXT_REVIEW_ACTION_CODE, "valueCodeableConcept": {"coding": [{"code": action}]}}
    return [{"extension": [{"url": urls.EXT_REVIEW_ACTION, "extension": [code]}]}]


def test_denied_means_every_item_not_certified() -> None:
    assert is_denied(_response("A3")) is True
    assert is_denied(_response("A3", "A3")) is True
    assert is_denied(_response("A3", "A1")) is False  # partly approved stays
    assert is_denied(_response("A4")) is False
    assert is_denied({"resourceType": "ClaimResponse"}) is False


def test_drug_requests_by_code_or_medication_request() -> None:
    assert is_drug_claim(data._claim("c", "p1", system=data.NDC)) is True
    assert is_drug_claim(data._claim("c", "p1")) is False
    by_order = data._claim("c", "p1")
    by_order["item"][0]["extension"] = [  # type: ignore[index]
        {"url": urls.EXT_REQUESTED_SERVICE, "valueReference": {"reference": "MedicationRequest/m1"}}
    ]
    assert is_drug_claim(by_order) is True


def test_dates_of_service_against_the_floor() -> None:
    floor = timestamp(datetime(2016, 1, 1, tzinfo=UTC))
    assert served_on_or_after(data._observation("o", "p1", "2016-01-01"), floor) is True
    assert served_on_or_after(data._observation("o", "p1", "2015-12-31T23:00:00Z"), floor) is False
    assert served_on_or_after(data._observation("o", "p1", "2016"), floor) is True  # partial: the year 2016
    assert served_on_or_after({"resourceType": "Patient"}, floor) is True  # undated


def test_cost_sharing_is_removed_only_where_present() -> None:
    eob = next(r for r in data.payer_data() if r["resourceType"] == "ExplanationOfBenefit")
    trimmed = without_cost_sharing(eob)
    assert trimmed is not None and "payment" not in trimmed and "total" not in trimmed
    assert without_cost_sharing(data._claim("c", "p1")) is None
    assert without_cost_sharing(data._observation("o", "p1", "2020")) is None


def test_a_prior_authorization_eob_for_drugs_is_left_out() -> None:
    from server.bulk.codes import Purpose
    from server.bulk.compartment import PatientResource
    from server.bulk.selection import ExportPolicy, select_lines
    from server.fhir_json import dumps

    drug = data._claim("e1", "p1", system=data.NDC) | {
        "resourceType": "ExplanationOfBenefit",
        "use": "preauthorization",
    }
    service = data._claim("e2", "p1") | {"resourceType": "ExplanationOfBenefit", "use": "preauthorization"}
    found = [
        PatientResource("p1", "ExplanationOfBenefit", r["id"], "2026-02-01T00:00:00.000000", dumps(r))
        for r in (drug, service)
    ]
    policy = ExportPolicy.of(Purpose.PROVIDER_ACCESS, NOW)
    lines = list(select_lines(found, {"ExplanationOfBenefit"}, None, policy))
    assert [line.body for line in lines] == [dumps(service)]
