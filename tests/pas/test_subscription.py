"""Accepting PAS Subscriptions (per version), spec-59 ownership, and the delivery retry schedule."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from igs.outcome import Failure, OperationOutcomeError
from server.pas import (
    Ident,
    NotificationEvent,
    PasVersion,
    RetryPolicy,
    SubscriptionRef,
    accept_subscription,
    status_parameters,
)

TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"


def _example(ig: Any) -> dict[str, Any]:
    return copy.deepcopy(ig(PasVersion.V2_2_1)["Subscription-PASSubscriptionExample.json"])


def test_ig_example_is_accepted_as_requested(ig: Any, check_profile: Any, validate: Any) -> None:
    example = _example(ig)
    accepted = accept_subscription(example, PasVersion.V2_2_1, client_identifiers=[Ident(None, "1234567893")])
    assert accepted.resource["status"] == "requested"
    assert accepted.payload == "full-resource"
    assert accepted.endpoint == "http://example.org/send-me-subscription-notifications"
    assert accepted.org_filter.identifiers == (Ident(None, "1234567893"),)
    assert check_profile(accepted.resource, PasVersion.V2_2_1, "profile-subscription") == []
    assert validate(accepted.resource, PasVersion.V2_2_1) == []
    assert example["status"] == "requested"  # the input is not modified


def test_a_system_subscribes_only_to_its_own_results(ig: Any) -> None:
    with pytest.raises(OperationOutcomeError) as exc:
        accept_subscription(_example(ig), PasVersion.V2_2_1, client_identifiers=[Ident(None, "999")])
    assert exc.value.failure is Failure.FORBIDDEN


def test_221_needs_full_resource_201_defaults_to_id_only(ig: Any) -> None:
    id_only = _example(ig)
    id_only["channel"]["_payload"]["extension"][0]["valueCode"] = "id-only"
    with pytest.raises(OperationOutcomeError):
        accept_subscription(id_only, PasVersion.V2_2_1)
    assert accept_subscription(id_only, PasVersion.V2_0_1).payload == "id-only"
    bare = _example(ig)
    del bare["channel"]["_payload"]
    with pytest.raises(OperationOutcomeError):
        accept_subscription(bare, PasVersion.V2_2_1)
    assert accept_subscription(bare, PasVersion.V2_0_1).payload == "id-only"


def test_every_problem_is_reported_at_once(ig: Any) -> None:
    bad = _example(ig)
    bad["criteria"] = "Patient?name=x"
    bad["channel"]["type"] = "websocket"
    del bad["channel"]["endpoint"]
    del bad["_criteria"]
    with pytest.raises(OperationOutcomeError) as exc:
        accept_subscription(bad, PasVersion.V2_2_1)
    assert exc.value.failure is Failure.UNPROCESSABLE
    expressions = {e for issue in exc.value.issues for e in issue.expression}
    assert {
        "Subscription.criteria",
        "Subscription.channel.type",
        "Subscription.channel.endpoint",
    } <= expressions
    with pytest.raises(OperationOutcomeError) as exc:
        accept_subscription({"resourceType": "Patient"}, PasVersion.V2_2_1)
    assert exc.value.failure is Failure.INVALID


def test_retry_schedule_backs_off_exponentially_and_gives_up(now: datetime) -> None:
    policy = RetryPolicy(first=timedelta(seconds=5), factor=2, cap=timedelta(minutes=1), max_attempts=6)
    delays = [policy.next_attempt_at(n, now) for n in range(1, 7)]
    assert [d - now for d in delays[:5] if d] == [
        timedelta(seconds=5),
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
        timedelta(minutes=1),
    ]
    assert delays[5] is None
    jittered = policy.next_attempt_at(1, now, jitter=0.5)
    assert jittered is not None and timedelta(seconds=5) < jittered - now <= timedelta(seconds=5.5)


def test_notification_event_with_additional_context(now: datetime) -> None:
    status = status_parameters(
        SubscriptionRef("https://pg.example/Subscription/1"),
        "event-notification",
        4,
        [NotificationEvent(4, now, "urn:uuid:b", ("https://pg.example/ClaimResponse/9",))],
    )
    (event,) = [p for p in status["parameter"] if p["name"] == "notification-event"]
    names = [p["name"] for p in event["part"]]
    assert names == ["event-number", "timestamp", "focus", "additional-context"]
    assert status["parameter"][1] == {"name": "topic", "valueCanonical": TOPIC}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_VALID: dict[str, Any] = {
    "resourceType": "Subscription",
    "status": "requested",
    "criteria": TOPIC,
    "_criteria": {
        "extension": [
            {
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                "valueString": "org-identifier=1234567893",
            }
        ]
    },
    "channel": {
        "type": "rest-hook",
        "endpoint": "https://ehr.example.org/hook",
        "_payload": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                    "valueCode": "full-resource",
                }
            ]
        },
    },
}
_PATHS = [
    ("criteria",),
    ("_criteria",),
    ("_criteria", "extension"),
    ("channel",),
    ("channel", "type"),
    ("channel", "endpoint"),
    ("channel", "header"),
    ("channel", "extension"),
    ("channel", "_payload"),
    ("channel", "_payload", "extension"),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _JSON), max_size=3), st.sampled_from(list(PasVersion)))
def test_any_mangled_subscription_is_accepted_or_refused_with_an_operation_outcome(
    changes: list[tuple[tuple[str, ...], Any]], version: PasVersion
) -> None:
    body = copy.deepcopy(_VALID)
    for path, value in changes:
        node: Any = body
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[path[-1]] = value
    try:
        accepted = accept_subscription(body, version)
    except OperationOutcomeError as exc:
        assert exc.failure in (Failure.INVALID, Failure.UNPROCESSABLE)
        return
    assert accepted.resource["status"] == "requested"
    assert accepted.endpoint.startswith(("https://", "http://"))
    assert accepted.heartbeat_period is None or accepted.heartbeat_period > 0
