"""Accepting a PAS Subscription and scheduling notification delivery retries.

Spec: PAS 2.2.1 PASSubscription (``profile-subscription``: criteria = the PAS topic, rest-hook only
(spec-56), channel.endpoint and payload required, payload content full-resource (spec-62)); PAS 2.0.1
(no Subscription profile: id-only SHALL, full-resource MAY); spec-58 (org-identifier filter); spec-59
(only the sending system may create or change its own subscriptions); Subscriptions Backport 1.1.0
(a new rest-hook Subscription starts ``requested`` and turns ``active`` after the handshake).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from igs.outcome import Failure, Issue, OperationOutcomeError

from . import urls
from .fhirdata import Ident, Json, as_map, ext_value
from .notification import OrgFilter, subscription_filter
from .versions import PasVersion, PayloadContent

_ALLOWED_CONTENT: Mapping[PasVersion, tuple[PayloadContent, ...]] = MappingProxyType(
    {
        PasVersion.V2_0_1: ("id-only", "full-resource"),  # full-resource by agreement
        PasVersion.V2_2_1: ("full-resource",),
    }
)


MAX_HEARTBEAT = 30 * 24 * 3600  # seconds: a month


@dataclass(frozen=True)
class AcceptedSubscription:
    """A Subscription PriorGate will serve: the resource to store and what delivery needs."""

    resource: Json  # status set to "requested" until the handshake succeeds
    org_filter: OrgFilter
    endpoint: str
    payload: PayloadContent
    headers: tuple[str, ...]
    heartbeat_period: int | None  # seconds


def accept_subscription(
    subscription: Any, version: PasVersion, *, client_identifiers: Sequence[Ident] | None = None
) -> AcceptedSubscription:
    """Check a PAS Subscription create or update; raise UNPROCESSABLE (or FORBIDDEN for spec-59).

    ``client_identifiers`` are the organization identifiers of the authenticated client; when given,
    every org in the filter must be one of them, so a system only subscribes to its own results.
    """
    if not isinstance(subscription, Mapping) or subscription.get("resourceType") != "Subscription":
        raise OperationOutcomeError.of(
            Failure.INVALID, "The body must be a Subscription", expression=("Subscription",)
        )
    issues: list[Issue] = []

    def problem(text: str, expression: str) -> None:
        issues.append(Issue(diagnostics=text, code="invariant", expression=(expression,)))

    if subscription.get("criteria") != urls.PAS_SUBSCRIPTION_TOPIC:
        problem(f"Subscription.criteria must be {urls.PAS_SUBSCRIPTION_TOPIC}", "Subscription.criteria")
    channel = as_map(subscription.get("channel"))
    if channel.get("type") != "rest-hook":
        problem("Only the rest-hook channel is supported (PAS spec-56)", "Subscription.channel.type")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        problem("Subscription.channel.endpoint must be an http(s) URL", "Subscription.channel.endpoint")
    content = ext_value(as_map(channel.get("_payload")), urls.BACKPORT_PAYLOAD_CONTENT)
    payload: PayloadContent = "full-resource" if version is PasVersion.V2_2_1 else "id-only"
    if content is not None:
        if content not in _ALLOWED_CONTENT[version]:
            allowed = " or ".join(_ALLOWED_CONTENT[version])
            problem(
                f"Payload content must be {allowed} for PAS {version.value}", "Subscription.channel.payload"
            )
        else:
            payload = content
    elif version is PasVersion.V2_2_1:
        problem(
            "The backport-payload-content extension (full-resource) is required",
            "Subscription.channel.payload",
        )
    heartbeat = ext_value(channel, f"{urls.BACKPORT_BASE}/backport-heartbeat-period")
    if heartbeat is not None and (
        not isinstance(heartbeat, int) or isinstance(heartbeat, bool) or not 0 < heartbeat <= MAX_HEARTBEAT
    ):
        problem(
            f"The heartbeat period must be a whole number of seconds from 1 to {MAX_HEARTBEAT}",
            "Subscription.channel.extension('backport-heartbeat-period')",
        )
    org_filter: OrgFilter | None = None
    try:
        org_filter = subscription_filter(dict(subscription))
    except OperationOutcomeError as exc:
        issues.extend(exc.issues)
    if issues:
        raise OperationOutcomeError(Failure.UNPROCESSABLE, tuple(issues))
    assert org_filter is not None and isinstance(endpoint, str)
    if client_identifiers is not None and not all(
        OrgFilter((wanted,)).matches(client_identifiers) for wanted in org_filter.identifiers
    ):
        raise OperationOutcomeError.of(
            Failure.FORBIDDEN,
            "A system may only subscribe to results for its own organization identifiers (PAS spec-59)",
            expression=("Subscription.criteria",),
        )
    headers = (
        tuple(h for h in channel.get("header", ()) if isinstance(h, str))
        if isinstance(channel.get("header"), list)
        else ()
    )
    resource = dict(subscription)
    resource["status"] = "requested"
    return AcceptedSubscription(
        resource=resource,
        org_filter=org_filter,
        endpoint=endpoint,
        payload=payload,
        headers=headers,
        heartbeat_period=heartbeat
        if isinstance(heartbeat, int) and not isinstance(heartbeat, bool)
        else None,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for notification delivery from the outbox."""

    first: timedelta = timedelta(seconds=5)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 12

    def next_attempt_at(self, failed_attempts: int, now: datetime, jitter: float = 0.0) -> datetime | None:
        """When to try again after ``failed_attempts`` failures, or None to give up (status error).

        ``jitter`` in [0, 1) is supplied by the caller (random in production, fixed in tests) and
        stretches the delay by up to 10 % so several PriorGate processes do not retry in lockstep.
        """
        if failed_attempts >= self.max_attempts:
            return None
        delay = min(self.first * (self.factor ** max(failed_attempts - 1, 0)), self.cap)
        return now + delay * (1.0 + 0.1 * min(max(jitter, 0.0), 0.999))
