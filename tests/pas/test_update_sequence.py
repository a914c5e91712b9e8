"""The claim-update sequence (initial, add item, cancel item, cancel all), as the PAS test kit runs it."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from server.pas import (
    CoverageFinding,
    CoverageQuery,
    PasVersion,
    ReviewAction,
    build_submit_response,
    claim_response_of,
    decide,
    decide_update,
    parse_pas_request,
)

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"


def _approve(query: CoverageQuery) -> CoverageFinding:
    return CoverageFinding("covered", "auth-needed")


def _sequences(response: dict[str, Any]) -> list[int]:
    cr = claim_response_of(response)
    assert cr is not None
    return [i["itemSequence"] for i in cr.get("item", [])]


def test_update_then_cancel_keeps_current_results_for_all_items(
    ig: Any, ids: Any, now: datetime, check_profile: Any, validate: Any
) -> None:
    v = PasVersion.V2_2_1
    pkg = ig(v)
    initial = parse_pas_request(pkg["Bundle-HomecareAuthorizationBundleExample.json"], v)
    first = decide(initial, _approve, ids, now)
    assert [i.action for i in first.items] == [ReviewAction.CERTIFIED, ReviewAction.CERTIFIED]

    update = parse_pas_request(pkg["Bundle-HomecareAuthorizationUpdateBundleExample.json"], v)
    second = decide_update(update, first, _approve, ids, now + timedelta(hours=1))
    assert [(i.sequence, i.action) for i in second.items] == [
        (1, ReviewAction.CERTIFIED),
        (2, ReviewAction.CANCELLED),
        (3, ReviewAction.CERTIFIED),
    ]
    assert second.items[0] == first.items[0]  # unchanged items keep their authorization
    assert second.pre_auth_ref == first.pre_auth_ref and second.version == 2
    response = build_submit_response(update, second, ids=ids, now=now)
    assert _sequences(response) == [1, 2, 3]  # spec-34 and spec-46
    assert check_profile(claim_response_of(response), v, "profile-claimresponse") == []
    assert validate(response, v) == []

    cancel_bundle = copy.deepcopy(pkg["Bundle-HomecareAuthorizationUpdateBundleExample.json"])
    claim = cancel_bundle["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "111099-CANCEL"
    claim.setdefault("extension", []).append(
        {
            "url": PAS + "extension-certificationType",
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]
            },
        }
    )
    del claim["item"]
    cancel = parse_pas_request(cancel_bundle, v)
    third = decide_update(cancel, second, _approve, ids, now + timedelta(hours=2))
    assert [(i.sequence, i.action) for i in third.items] == [(s, ReviewAction.CANCELLED) for s in (1, 2, 3)]
    assert _sequences(build_submit_response(cancel, third, ids=ids, now=now)) == [1, 2, 3]


def test_differential_update_carries_unchanged_items(ig: Any, ids: Any, now: datetime) -> None:
    v = PasVersion.V2_0_1
    pkg = ig(v)
    initial = parse_pas_request(pkg["Bundle-HomecareAuthorizationBundleExample.json"], v)
    first = decide(initial, _approve, ids, now)
    differential = parse_pas_request(pkg["Bundle-HomecareAuthorizationDifferentialBundleExample.json"], v)
    assert [i.sequence for i in differential.items] == [2, 3]
    second = decide_update(differential, first, _approve, ids, now)
    assert [(i.sequence, i.action) for i in second.items] == [
        (1, ReviewAction.CERTIFIED),
        (2, ReviewAction.CANCELLED),
        (3, ReviewAction.CERTIFIED),
    ]
    assert _sequences(build_submit_response(differential, second, ids=ids, now=now)) == [1, 2, 3]
