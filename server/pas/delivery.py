"""The notification delivery worker: an asyncio task per PriorGate process that drains the outbox.

Each round queues due heartbeats, claims due rows (:meth:`Outbox.claim`), POSTs each notification Bundle
to its subscription's rest-hook endpoint, and records the answer: any 2xx is a delivery, anything else
(or no answer) is retried with exponential backoff (:class:`RetryPolicy`) until the attempts run out.
Handshakes have their own, shorter policy: a subscription whose endpoint never answers turns ``error``.
The HTTP client, clock and jitter are injected; database calls run in threads.

Every attempt's outcome (delivered, failed and retried later, failed for good) is recorded as an
AuditEvent through the injected ``audit`` sink (PAS: every notification is audited): the subscription,
the endpoint, the ClaimResponse the notification names and its patient; never the channel headers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from server.background import RoundLoop
from server.security.audit import NotificationOutcome, audit_notification
from server.security.audit_log import AuditWriter
from server.settings import Settings

from .outbox import Claimed, Outbox
from .subscription import RetryPolicy

log = logging.getLogger("priorgate.pas.delivery")


@dataclass(frozen=True)
class DeliverySettings:
    poll_interval: float = 1.0  # seconds between rounds when the outbox is idle
    lease: timedelta = timedelta(seconds=60)  # how long a claim lasts before another process may retry
    batch: int = 20
    events: RetryPolicy = RetryPolicy()
    handshakes: RetryPolicy = RetryPolicy(max_attempts=3)


def _headers(claimed: Claimed) -> dict[str, str]:
    out = {"Content-Type": "application/fhir+json"}
    for header in claimed.headers:
        name, sep, value = header.partition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


class DeliveryWorker:
    """Drains the outbox; ``run_once`` is one round, ``start``/``stop`` run rounds in the background."""

    def __init__(
        self,
        outbox: Outbox,
        client: httpx.AsyncClient,
        now: Callable[[], datetime],
        settings: DeliverySettings = DeliverySettings(),
        *,
        jitter: Callable[[], float] = random.random,
        audit: AuditWriter | None = None,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._now = now
        self._settings = settings
        self._jitter = jitter
        self._audit = audit
        self._rounds = RoundLoop(
            "priorgate-notification-delivery", self.run_once, settings.poll_interval, log
        )

    async def run_once(self) -> int:
        """One round: queue heartbeats, claim, deliver, record. Returns how many rows were attempted."""
        await asyncio.to_thread(self._outbox.schedule_heartbeats, self._now())
        claimed = await asyncio.to_thread(
            self._outbox.claim, self._now(), self._settings.lease, self._settings.batch
        )
        if claimed:
            await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Claimed) -> None:
        error: str | None = None
        try:
            answer = await self._client.post(
                claimed.endpoint, content=claimed.body, headers=_headers(claimed)
            )
            if not 200 <= answer.status_code < 300:
                error = f"{claimed.endpoint} answered HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{claimed.endpoint}: {type(exc).__name__}: {exc}"
        now = self._now()
        if error is None:
            await asyncio.to_thread(self._outbox.delivered, claimed, now)
            await self._record(claimed, "delivered", now, None)
            return
        policy = self._settings.handshakes if claimed.kind == "handshake" else self._settings.events
        retry_at = policy.next_attempt_at(claimed.attempts, now, self._jitter())
        log.info(
            "notification %s to subscription %s failed (attempt %d)%s: %s",
            claimed.row_id,
            claimed.subscription_id,
            claimed.attempts,
            "" if retry_at is not None else ", giving up",
            error,
        )
        await asyncio.to_thread(self._outbox.failed, claimed, now, error, retry_at)
        await self._record(claimed, "retrying" if retry_at is not None else "failed", now, error)

    async def _record(
        self, claimed: Claimed, outcome: NotificationOutcome, now: datetime, error: str | None
    ) -> None:
        """The attempt's AuditEvent; a failing audit store is logged, never stops delivery."""
        if self._audit is None:
            return
        audit = self._audit
        what, patients = notification_subjects(claimed.body)
        event = audit_notification(
            f"Subscription/{claimed.subscription_id}",
            claimed.kind,
            outcome,
            endpoint=claimed.endpoint,
            source=audit.source,
            recorded=now,
            attempt=claimed.attempts,
            event_number=claimed.event_number,
            what=what,
            patients=patients,
            error=error,
        )
        try:
            await asyncio.to_thread(audit.write, event)
        except Exception:
            log.exception("could not record the audit event of notification %s", claimed.row_id)

    def wake(self) -> None:
        """Start a round now (call from the event loop, e.g. after a route queued notifications)."""
        self._rounds.wake()

    def start(self) -> None:
        self._rounds.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the current round (its database calls and deliveries), then stop; a round still busy
        after ``grace`` seconds is cancelled and its claimed rows are delivered after their lease ends."""
        await self._rounds.stop(grace)


def _resources(bundle: Any) -> Iterator[dict[str, Any]]:
    """The resources of a Bundle and of the Bundles it holds (the full-resource Response Bundle)."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            yield resource
            if resource.get("resourceType") == "Bundle":
                yield from _resources(resource)


def notification_subjects(body: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a notification Bundle names (the event focus and additional context, the ClaimResponses it
    carries) and the patients of those ClaimResponses, for its AuditEvent. Unreadable bodies name nothing."""
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (), ()
    what: list[str] = []
    patients: list[str] = []
    for resource in _resources(bundle):
        kind = resource.get("resourceType")
        if kind == "Parameters":  # the SubscriptionStatus
            for param in resource.get("parameter") or ():
                if not isinstance(param, dict) or param.get("name") != "notification-event":
                    continue
                for part in param.get("part") or ():
                    ref = part.get("valueReference") if isinstance(part, dict) else None
                    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                        what.append(ref["reference"])
        elif kind == "ClaimResponse":
            if isinstance(resource.get("id"), str):
                what.append(f"ClaimResponse/{resource['id']}")
            patient = resource.get("patient")
            if isinstance(patient, dict) and isinstance(patient.get("reference"), str):
                patients.append(patient["reference"])
    return tuple(dict.fromkeys(what)), tuple(dict.fromkeys(patients))


def delivery_settings(settings: Settings) -> DeliverySettings:
    """The worker's settings from ``PRIORGATE_NOTIFICATION_*``."""
    first = timedelta(seconds=settings.notification_backoff)
    cap = timedelta(seconds=settings.notification_backoff_cap)
    return DeliverySettings(
        poll_interval=settings.notification_poll_interval,
        lease=timedelta(seconds=settings.notification_lease),
        events=RetryPolicy(first=first, cap=cap, max_attempts=settings.notification_max_attempts),
        handshakes=RetryPolicy(first=first, cap=cap, max_attempts=settings.notification_handshake_attempts),
    )
