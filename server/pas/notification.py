"""Subscription notifications for PAS results (R5 Backport on R4) and the org-identifier filter.

Spec: Subscriptions R5 Backport 1.1.0 (R4 ``backport-subscription-notification-r4`` history Bundle,
first entry a ``backport-subscription-status-r4`` Parameters); PAS spec-58 (filter
``org-identifier=<sending system identifier>``, comma-separated), spec-61/62 (full PAS Response Bundle
in 2.2; id-only was the 2.0.1 SHALL), the PASSubscriptionTopic canonical, and the topic's own
``orgIdentifier`` filter name, which is accepted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from igs.outcome import invalid

from . import urls
from .fhirdata import Ident, Json, ext_value, instant
from .versions import PasVersion, PayloadContent

FILTER_NAMES = ("org-identifier", "orgidentifier")  # compared case-insensitively
NotificationType = Literal["handshake", "heartbeat", "event-notification", "query-status", "query-event"]
SubscriptionStatusCode = Literal["requested", "active", "error", "off"]


@dataclass(frozen=True)
class OrgFilter:
    """The organizations a subscription wants results for: ``value`` or ``system|value`` tokens."""

    identifiers: tuple[Ident, ...]

    def matches(self, submitter: Sequence[Ident]) -> bool:
        """True when any submitter identifier equals a filter identifier (a bare value matches any system)."""
        for wanted in self.identifiers:
            for have in submitter:
                if wanted.value == have.value and (wanted.system is None or wanted.system == have.system):
                    return True
        return False


def parse_org_filter(criteria: str) -> OrgFilter:
    """Parse ``org-identifier=a,sys|b`` (or ``orgIdentifier=...``) from backport-filter-criteria."""
    name, sep, value = criteria.strip().partition("=")
    if not sep or name.strip().lower() not in FILTER_NAMES or not value.strip():
        raise invalid(
            "The filter criteria must be org-identifier=<identifier>[,<identifier>...]",
            "Subscription.criteria.extension('backport-filter-criteria')",
        )
    out: list[Ident] = []
    for token in value.split(","):
        token = token.strip()
        if not token:
            continue
        system, bar, rest = token.partition("|")
        out.append(Ident(system or None, rest) if bar else Ident(None, token))
    return OrgFilter(tuple(out))


def subscription_filter(subscription: Any) -> OrgFilter:
    """The org filter of a PAS Subscription (exactly one backport-filter-criteria on criteria)."""
    criteria_ext = subscription.get("_criteria") if isinstance(subscription, dict) else None
    value = ext_value(criteria_ext, urls.BACKPORT_FILTER_CRITERIA) if criteria_ext else None
    if not isinstance(value, str):
        raise invalid(
            "A PAS Subscription needs a backport-filter-criteria extension with org-identifier",
            "Subscription.criteria",
        )
    return parse_org_filter(value)


@dataclass(frozen=True)
class SubscriptionRef:
    """What a notification says about its subscription."""

    url: str  # the Subscription's absolute URL (used for the $status request entry)
    status: SubscriptionStatusCode = "active"
    topic: str = urls.PAS_SUBSCRIPTION_TOPIC


@dataclass(frozen=True)
class NotificationEvent:
    """One ``notification-event``: its number, when it happened, the focus and any additional context."""

    number: int
    timestamp: datetime
    focus: str | None = None
    additional_context: tuple[str, ...] = ()


def status_parameters(
    subscription: SubscriptionRef,
    notification_type: NotificationType,
    events_since_start: int,
    events: Sequence[NotificationEvent] = (),
) -> Json:
    """A SubscriptionStatus Parameters (``backport-subscription-status-r4``)."""
    params: list[Json] = [
        {"name": "subscription", "valueReference": {"reference": subscription.url}},
        {"name": "topic", "valueCanonical": subscription.topic},
        {"name": "status", "valueCode": subscription.status},
        {"name": "type", "valueCode": notification_type},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        parts: list[Json] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": instant(event.timestamp)},
        ]
        if event.focus is not None:
            parts.append({"name": "focus", "valueReference": {"reference": event.focus}})
        for context in event.additional_context:
            parts.append({"name": "additional-context", "valueReference": {"reference": context}})
        params.append({"name": "notification-event", "part": parts})
    return {
        "resourceType": "Parameters",
        "meta": {"profile": [urls.BACKPORT_SUBSCRIPTION_STATUS_R4]},
        "parameter": params,
    }


def notification_bundle(
    subscription: SubscriptionRef,
    *,
    bundle_id: str,
    status_id: str,
    now: datetime,
    notification_type: NotificationType,
    events_since_start: int,
    event_number: int | None = None,
    response_bundle: Json | None = None,
    response_bundle_url: str | None = None,
    payload: PayloadContent = "full-resource",
    additional_context: Sequence[str] = (),
) -> Json:
    """A Backport R4 notification Bundle (type history); the event carries the PAS Response Bundle.

    ``response_bundle_url`` is the focus: the Response Bundle's URL on this server. ``full-resource``
    adds that Bundle as the next entry (spec-61); ``id-only`` sends only its reference (2.0.1).
    """
    status = {
        **subscription_status(
            subscription,
            notification_type,
            events_since_start,
            event_number,
            now,
            response_bundle_url,
            additional_context,
        ),
        "id": status_id,
    }
    entries: list[Json] = [
        {
            "fullUrl": f"urn:uuid:{status_id}",
            "resource": status,
            "request": {"method": "GET", "url": f"{subscription.url}/$status"},
            "response": {"status": "200"},
        }
    ]
    if payload == "full-resource" and response_bundle is not None and response_bundle_url is not None:
        entries.append(
            {
                "fullUrl": response_bundle_url,
                "resource": response_bundle,
                "request": {"method": "POST", "url": "Bundle"},
                "response": {"status": "201"},
            }
        )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [urls.BACKPORT_SUBSCRIPTION_NOTIFICATION_R4]},
        "type": "history",
        "timestamp": instant(now),
        "entry": entries,
    }


def subscription_status(
    subscription: SubscriptionRef,
    notification_type: NotificationType,
    events_since_start: int,
    event_number: int | None,
    now: datetime,
    focus: str | None,
    additional_context: Sequence[str] = (),
) -> Json:
    events = (
        [NotificationEvent(event_number, now, focus, tuple(additional_context))]
        if event_number is not None
        else []
    )
    return status_parameters(subscription, notification_type, events_since_start, events)


def result_notification(
    version: PasVersion,
    subscription: SubscriptionRef,
    *,
    response_bundle: Json,
    response_bundle_url: str,
    event_number: int,
    bundle_id: str,
    status_id: str,
    now: datetime,
) -> Json:
    """The PAS result-available notification with the version's payload content (2.2 full, 2.0.1 id-only)."""
    return notification_bundle(
        subscription,
        bundle_id=bundle_id,
        status_id=status_id,
        now=now,
        notification_type="event-notification",
        events_since_start=event_number,
        event_number=event_number,
        response_bundle=response_bundle,
        response_bundle_url=response_bundle_url,
        payload=version.rules.payload_content,
    )


def handshake(subscription: SubscriptionRef, *, bundle_id: str, status_id: str, now: datetime) -> Json:
    """The handshake sent when a rest-hook Subscription is created (status requested -> active)."""
    return notification_bundle(
        subscription,
        bundle_id=bundle_id,
        status_id=status_id,
        now=now,
        notification_type="handshake",
        events_since_start=0,
    )


def heartbeat(
    subscription: SubscriptionRef, *, bundle_id: str, status_id: str, now: datetime, events_since_start: int
) -> Json:
    return notification_bundle(
        subscription,
        bundle_id=bundle_id,
        status_id=status_id,
        now=now,
        notification_type="heartbeat",
        events_since_start=events_since_start,
    )
