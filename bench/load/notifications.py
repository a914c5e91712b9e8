"""The notification check of the load run: every notification owed arrived at the subscriber.

A decision made through the review API owes one event notification to each matching subscription; the
load run has one, so ``owed`` decisions owe event numbers ``1..owed``. After the run the check waits
(bounded) for the outbox to drain, then compares what the subscriber received, deduplicated by event
number, with what was owed and what the database numbered, and the claims the notifications carry (the
ClaimResponse identifiers of their Response Bundles) with the claims decided. Delivery is at least once:
repeats are counted and reported; a missing or unexpected event number or claim is a problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from conformance.listener import Listener
from conformance.suites.pas_server import event_numbers
from server.storage.engine import make_engine
from server.storage.schema import pas_outbox, pas_subscription


@dataclass
class NotificationCheck:
    owed: int  # decisions answered 200 (one event each)
    numbered: int = 0  # events the database numbered for the subscription
    delivered: int = 0  # distinct event numbers received
    repeats: int = 0  # deliveries beyond the first of an event number (allowed: at least once)
    drained_s: float = 0.0  # from the end of the traffic until the last owed notification arrived
    outbox: dict[str, int] = field(default_factory=dict)  # event rows per status
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "owed": self.owed,
            "numbered": self.numbered,
            "delivered": self.delivered,
            "repeats": self.repeats,
            "drained_s": round(self.drained_s, 2),
            "outbox": self.outbox,
            "problems": self.problems,
        }


def _outbox(database_url: str, subscription_id: str) -> tuple[dict[str, int], int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(pas_outbox.c.status, func.count())
                .where(
                    pas_outbox.c.subscription_id == subscription_id,
                    pas_outbox.c.kind == "event-notification",
                )
                .group_by(pas_outbox.c.status)
            ).all()
            events = conn.execute(
                select(pas_subscription.c.events).where(pas_subscription.c.subscription_id == subscription_id)
            ).scalar_one()
    finally:
        engine.dispose()
    return {str(status): int(n) for status, n in rows}, int(events)


def notified_claims(notifications: list[Any]) -> set[str]:
    """The claim identifiers (``system|value``) of the ClaimResponses carried by event notifications
    (full-resource payload: the Response Bundle follows the SubscriptionStatus)."""
    out = set()
    for body in notifications:
        if not event_numbers([body]):
            continue
        for entry in body.get("entry", [])[1:]:
            for inner in entry.get("resource", {}).get("entry", []):
                resource = inner.get("resource", {})
                if resource.get("resourceType") == "ClaimResponse":
                    out.update(f"{i.get('system')}|{i.get('value')}" for i in resource.get("identifier", []))
    return out


def check_notifications(
    database_url: str, hook: Listener, subscription_id: str, decided: list[str], *, wait: float = 60.0
) -> NotificationCheck:
    """Wait up to ``wait`` seconds for every notification owed for the ``decided`` claims (identifiers,
    one decision each) to arrive and the outbox to drain; then check."""
    owed = len(decided)
    check = NotificationCheck(owed)
    wanted = set(range(1, owed + 1))
    began = time.monotonic()
    while True:
        outbox, numbered = _outbox(database_url, subscription_id)
        received = event_numbers(list(hook.received))
        if (wanted <= set(received) and not outbox.get("pending")) or time.monotonic() - began > wait:
            break
        time.sleep(0.2)
    check.drained_s = time.monotonic() - began
    check.outbox, check.numbered = outbox, numbered
    check.delivered = len(set(received) & wanted)
    check.repeats = sum(n - 1 for n in received.values())
    missing = sorted(wanted - set(received))
    if missing:
        check.problems.append(f"{len(missing)} owed event(s) never arrived within {wait:g} s: {missing[:20]}")
    unexpected = sorted(set(received) - wanted)
    if unexpected:
        check.problems.append(f"event numbers arrived that no decision owed: {unexpected[:20]}")
    claims = notified_claims(list(hook.received))
    if set(decided) - claims:
        check.problems.append(f"decided claims never notified: {sorted(set(decided) - claims)[:20]}")
    if claims - set(decided):
        check.problems.append(f"notified claims never decided: {sorted(claims - set(decided))[:20]}")
    if numbered != owed:
        check.problems.append(f"the database numbered {numbered} events for {owed} decisions")
    if outbox.get("failed"):
        check.problems.append(f"{outbox['failed']} notification(s) failed for good")
    return check
