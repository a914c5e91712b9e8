"""Subscription notifications (R5 Backport on R4) and the submitter-organization filter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from igs.outcome import OperationOutcomeError
from server.pas import (
    CoverageFinding,
    CoverageQuery,
    Ident,
    PasVersion,
    SubscriptionRef,
    build_submit_response,
    decide,
    handshake,
    heartbeat,
    parse_org_filter,
    parse_pas_request,
    result_notification,
    status_parameters,
    subscription_filter,
)

Json = dict[str, Any]
TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
SUB = SubscriptionRef("https://priorgate.example/pas/2.2.1/Subscription/s1")


@pytest.mark.parametrize(
    "criteria", ["org-identifier=PROVIDERID", "orgIdentifier=PROVIDERID", "ORG-IDENTIFIER=PROVIDERID"]
)
def test_both_filter_names_are_accepted(criteria: str) -> None:
    assert parse_org_filter(criteria).matches([Ident(None, "PROVIDERID")])


def test_filter_values_lists_and_systems() -> None:
    npi = "http://hl7.org/fhir/sid/us-npi"
    flt = parse_org_filter(f"org-identifier=AAA, {npi}|8189991234")
    assert flt.identifiers == (Ident(None, "AAA"), Ident(npi, "8189991234"))
    assert flt.matches([Ident(npi, "8189991234")])
    assert not flt.matches([Ident("urn:other", "8189991234")])
    assert flt.matches([Ident("urn:any", "AAA")])
    assert not flt.matches([Ident(None, "BBB")])
    for bad in ("patient=1", "org-identifier=", "orgIdentifier"):
        with pytest.raises(OperationOutcomeError):
            parse_org_filter(bad)


def test_ig_subscription_example_filter(ig: Any) -> None:
    flt = subscription_filter(ig(PasVersion.V2_2_1)["Subscription-PASSubscriptionExample.json"])
    assert flt.identifiers == (Ident(None, "1234567893"),)
    with pytest.raises(OperationOutcomeError):
        subscription_filter({"resourceType": "Subscription", "criteria": TOPIC})


def _response(ig: Any, version: PasVersion, ids: Any, now: datetime) -> tuple[Any, Json]:
    request = parse_pas_request(ig(version)["Bundle-ReferralAuthorizationBundleExample.json"], version)

    def evaluate(query: CoverageQuery) -> CoverageFinding:
        return CoverageFinding("covered", "auth-needed")

    return request, build_submit_response(request, decide(request, evaluate, ids, now), ids=ids, now=now)


def _params(resource: Json) -> dict[str, Any]:
    return {p["name"]: p for p in resource["parameter"]}


def test_221_notification_is_full_resource(ig: Any, ids: Any, now: datetime) -> None:
    request, response = _response(ig, PasVersion.V2_2_1, ids, now)
    assert parse_org_filter("org-identifier=PROVIDERID").matches(request.submitter_identifiers)
    url = f"https://priorgate.example/pas/2.2.1/Bundle/{response['id']}"
    note = result_notification(
        PasVersion.V2_2_1,
        SUB,
        response_bundle=response,
        response_bundle_url=url,
        event_number=3,
        bundle_id="n1",
        status_id="s1",
        now=now,
    )
    assert note["type"] == "history"
    assert [e["resource"]["resourceType"] for e in note["entry"]] == ["Parameters", "Bundle"]
    params = _params(note["entry"][0]["resource"])
    assert params["topic"]["valueCanonical"] == TOPIC
    assert params["type"]["valueCode"] == "event-notification"
    assert params["status"]["valueCode"] == "active"
    assert params["events-since-subscription-start"]["valueString"] == "3"
    parts = {p["name"]: p for p in params["notification-event"]["part"]}
    assert parts["event-number"]["valueString"] == "3"
    focus = parts["focus"]["valueReference"]["reference"]
    (focused,) = [e["resource"] for e in note["entry"] if e["fullUrl"] == focus]
    assert focused["type"] == "collection"
    assert focused["entry"][0]["resource"]["resourceType"] == "ClaimResponse"
    assert note["entry"][0]["request"] == {"method": "GET", "url": f"{SUB.url}/$status"}


def test_201_notification_is_id_only(ig: Any, ids: Any, now: datetime) -> None:
    _, response = _response(ig, PasVersion.V2_0_1, ids, now)
    url = f"https://priorgate.example/pas/2.0.1/Bundle/{response['id']}"
    note = result_notification(
        PasVersion.V2_0_1,
        SUB,
        response_bundle=response,
        response_bundle_url=url,
        event_number=1,
        bundle_id="n1",
        status_id="s1",
        now=now,
    )
    assert len(note["entry"]) == 1
    parts = {p["name"]: p for p in _params(note["entry"][0]["resource"])["notification-event"]["part"]}
    assert parts["focus"]["valueReference"]["reference"] == url


def test_status_parameters_meet_the_backport_required_parameters(ig: Any, now: datetime) -> None:
    status = status_parameters(SUB, "query-status", 5)
    names = [p["name"] for p in status["parameter"]]
    for required in ("subscription", "status", "type"):
        assert names.count(required) == 1
    assert "notification-event" not in names


def test_handshake_and_heartbeat_carry_no_events(now: datetime) -> None:
    requested = SubscriptionRef(SUB.url, status="requested")
    shake = handshake(requested, bundle_id="h", status_id="s", now=now)
    params = _params(shake["entry"][0]["resource"])
    assert params["type"]["valueCode"] == "handshake"
    assert params["status"]["valueCode"] == "requested"
    assert params["events-since-subscription-start"]["valueString"] == "0"
    assert len(shake["entry"]) == 1
    beat = heartbeat(SUB, bundle_id="b", status_id="s", now=now, events_since_start=7)
    assert _params(beat["entry"][0]["resource"])["type"]["valueCode"] == "heartbeat"


@pytest.mark.parametrize("version", list(PasVersion))
def test_notifications_validate_like_the_backport_examples(
    version: PasVersion, ig: Any, ids: Any, now: datetime, validate: Any
) -> None:
    """Our notifications draw no validator error the Backport IG's own R4 example does not draw too."""
    import json
    import os
    import tarfile
    from pathlib import Path

    tgz = Path(os.environ["PRIORGATE_IG_PATH"]) / "hl7.fhir.uv.subscriptions-backport.r4-1.1.0.tgz"
    with tarfile.open(tgz) as archive:
        member = archive.extractfile("package/example/Bundle-r4-notification-full-resource.json")
        assert member is not None
        reference_example = json.loads(member.read())
    baseline = {issue.split(": ", 1)[1] for issue in validate(reference_example, version)}
    _, response = _response(ig, version, ids, now)
    note = result_notification(
        version,
        SUB,
        response_bundle=response,
        response_bundle_url="https://pg.example/Bundle/1",
        event_number=1,
        bundle_id="n1",
        status_id="s1",
        now=now,
    )
    shake = handshake(SUB, bundle_id="h", status_id="s", now=now)
    for bundle in (note, shake):
        assert {issue.split(": ", 1)[1] for issue in validate(bundle, version)} <= baseline
