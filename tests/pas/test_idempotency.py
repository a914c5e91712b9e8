"""Request fingerprints, replays, identifier conflicts and the update / cancel rules."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    Ident,
    PasVersion,
    PriorItem,
    PriorSubmission,
    RejectReason,
    ReviewAction,
    SubmissionKind,
    check_update,
    classify,
    fingerprint,
    parse_pas_request,
)

Json = dict[str, Any]
V = PasVersion.V2_2_1


def _fp(bundle: Json, version: PasVersion = V) -> str:
    return fingerprint(parse_pas_request(bundle, version))


def _reorder(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _reorder(node[k]) for k in reversed(list(node))}
    if isinstance(node, list):
        return [_reorder(v) for v in node]
    return node


def _rename_full_urls(bundle: Json) -> Json:
    """The same content with new urn:uuid fullUrls and rewritten references (a regenerated client Bundle)."""
    text = json.dumps(bundle)
    for n, entry in enumerate(bundle["entry"]):
        rid = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        text = text.replace(f'"{entry["fullUrl"]}"', f'"urn:uuid:00000000-0000-4000-8000-{n:012d}"')
        text = text.replace(f'"{rid}"', f'"urn:uuid:00000000-0000-4000-8000-{n:012d}"')
    return json.loads(text)  # type: ignore[no-any-return]


def test_fingerprint_is_stable_across_key_order_ids_and_envelope(
    example_bundle: tuple[PasVersion, Json],
) -> None:
    version, bundle = example_bundle
    base = _fp(bundle, version)
    assert _fp(_reorder(bundle), version) == base
    other = copy.deepcopy(bundle)
    other["id"] = "another"
    other["timestamp"] = "2030-01-01T00:00:00Z"
    other["meta"] = {"lastUpdated": "2030-01-01T00:00:00Z"}
    for entry in other["entry"]:
        entry["resource"].pop("text", None)
        entry["resource"]["meta"] = {"versionId": "7"}
    assert _fp(other, version) == base
    assert _fp(_rename_full_urls(bundle), version) == base


def test_fingerprint_changes_with_content(ig: Any) -> None:
    bundle = ig(V)["Bundle-ReferralAuthorizationBundleExample.json"]
    base = _fp(bundle)
    changed = copy.deepcopy(bundle)
    changed["entry"][0]["resource"]["item"][0]["productOrService"]["coding"][0]["code"] = "4"
    assert _fp(changed) != base
    patient_changed = copy.deepcopy(bundle)
    for entry in patient_changed["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["birthDate"] = "1970-01-01"
    assert _fp(patient_changed) != base  # a referenced entry counts too


def _prior(
    request: Any, fp: str, items: tuple[PriorItem, ...] = (), cancelled: bool = False
) -> PriorSubmission:
    return PriorSubmission(
        fingerprint=fp,
        claim_identifiers=request.claim_identifiers,
        patient_identifiers=request.patient.identifiers,
        member_ids=request.member_ids,
        items=items or tuple(PriorItem(i.sequence, ReviewAction.CERTIFIED) for i in request.items),
        cancelled=cancelled,
    )


def test_replay_new_and_conflict(ig: Any) -> None:
    bundle = ig(V)["Bundle-ReferralAuthorizationBundleExample.json"]
    request = parse_pas_request(bundle, V)
    fp = fingerprint(request)
    assert classify(request, fp, None) is SubmissionKind.NEW
    assert classify(request, fp, _prior(request, fp)) is SubmissionKind.REPLAY
    with pytest.raises(OperationOutcomeError) as exc:
        classify(request, fp, _prior(request, "something-else"))
    assert exc.value.failure is Failure.CONFLICT


def test_updates_are_not_conflicts_even_when_the_identifier_is_reused(ig: Any) -> None:
    old = ig(PasVersion.V2_0_1)
    original = parse_pas_request(old["Bundle-HomecareAuthorizationBundleExample.json"], PasVersion.V2_0_1)
    update = parse_pas_request(old["Bundle-HomecareAuthorizationUpdateBundleExample.json"], PasVersion.V2_0_1)
    prior = _prior(original, fingerprint(original))
    assert classify(update, fingerprint(update), prior) is SubmissionKind.UPDATE
    assert check_update(update, prior) == ()


def test_update_rules(ig: Any) -> None:
    pkg = ig(V)
    original = parse_pas_request(pkg["Bundle-HomecareAuthorizationBundleExample.json"], V)
    update = parse_pas_request(pkg["Bundle-HomecareAuthorizationUpdateBundleExample.json"], V)
    prior = _prior(original, fingerprint(original))
    assert check_update(update, prior) == ()
    (missing,) = check_update(update, None)
    assert missing.code == RejectReason.AUTHORIZATION_NUMBER_NOT_FOUND
    assert (
        check_update(update, _prior(original, "x", cancelled=True))[0].text
        == "The prior request was cancelled"
    )
    denied = _prior(
        original,
        "x",
        items=(PriorItem(1, ReviewAction.NOT_CERTIFIED), PriorItem(2, ReviewAction.NOT_CERTIFIED)),
    )
    assert any("denied" in e.text for e in check_update(update, denied))
    # item 3 is "added": it must not exist before; item 2 is cancelled: it must exist before
    clash = _prior(
        original, "x", items=(PriorItem(1, ReviewAction.CERTIFIED), PriorItem(3, ReviewAction.CERTIFIED))
    )
    paths = sorted(e.path or "" for e in check_update(update, clash))
    assert paths == ["Bundle.entry[0].resource.item[1].sequence", "Bundle.entry[0].resource.item[2].sequence"]
    other_member = PriorSubmission("x", (), (), (Ident(None, "someone-else"),), prior.items)
    assert any(e.element == "2010C-NM109" for e in check_update(update, other_member))


def test_whole_cancel_is_classified_as_cancel(ig: Any) -> None:
    bundle = copy.deepcopy(ig(V)["Bundle-HomecareAuthorizationUpdateBundleExample.json"])
    claim = bundle["entry"][0]["resource"]
    claim.setdefault("extension", []).append(
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType",
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]
            },
        }
    )
    del claim["item"]
    request = parse_pas_request(bundle, V)
    assert classify(request, fingerprint(request), None) is SubmissionKind.CANCEL


def test_fingerprint_survives_reference_cycles(ig: Any, now: datetime) -> None:
    bundle = copy.deepcopy(ig(V)["Bundle-ReferralAuthorizationBundleExample.json"])
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["link"] = [
                {"other": {"reference": bundle["entry"][0]["fullUrl"]}, "type": "seealso"}
            ]
    assert len(_fp(bundle)) == 64


def test_fingerprint_of_a_claim_with_exact_decimals() -> None:
    # Regression: the fingerprint hashed with orjson, which refuses Decimal: every $submit carrying a
    # fractional number (a quantity, a unit price) was a 500.
    from conformance.suites import pas_server
    from server.fhir_json import loads

    def with_quantity(text: str) -> Json:
        bundle = pas_server.request_bundle("DEC", ("72148",))
        raw = json.dumps(bundle).replace(
            '"sequence": 1,', f'"sequence": 1, "quantity": {{"value": {text}}},', 1
        )
        parsed: Json = loads(raw)
        return parsed

    assert _fp(with_quantity("1.5")) == _fp(with_quantity("1.5"))
    assert _fp(with_quantity("1.5")) != _fp(with_quantity("2.5"))
