"""The notification outbox: claiming due rows, recording deliveries and failures, queueing heartbeats.

A row is claimable when it is ``pending`` and ``available_at`` has passed. Claiming sets ``available_at``
to the end of a lease and a fresh ``claim_token``, in one transaction: on PostgreSQL the rows are read
``FOR UPDATE SKIP LOCKED``, so several PriorGate processes share one outbox without taking the same row;
on SQLite the claim runs in a ``BEGIN IMMEDIATE`` transaction, which no other writer can interleave. A
process that dies mid-delivery leaves its rows claimed until the lease ends; then any process claims them
again. Completing a row needs its claim token, so a late answer from an expired claim changes nothing.
Delivery is therefore at least once; event numbers let a subscriber drop a repeat.

Event notifications wait while their subscription is ``requested`` (before the handshake) or ``error``;
updating the subscription (a new handshake) lets them flow again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, delete, or_, select, update

from server import fhir_json
from server.storage.engine import WRITE_OPTION, is_postgresql
from server.storage.schema import pas_outbox, pas_subscription

from .subscription_store import SubscriptionStore, heartbeat_due, record_of, stamp


@dataclass(frozen=True)
class Claimed:
    """A claimed outbox row and what delivering it needs."""

    row_id: int
    claim_token: str
    tenant: str
    subscription_id: str
    kind: str
    event_number: int | None
    body: bytes
    attempts: int  # including this one
    endpoint: str
    headers: tuple[str, ...]


class Outbox:
    """The outbox across tenants (one delivery worker per process serves every tenant)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _writing(self) -> Connection:
        return self._engine.connect().execution_options(**{WRITE_OPTION: True})

    def _any(self, query: Select[Any]) -> bool:
        """A lock-free look first: an idle outbox costs no write transaction (SQLite has one writer)."""
        with self._engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` due rows for ``lease``; each gets its own claim token."""
        sub = pas_subscription
        query = (
            select(
                pas_outbox.c.id,
                pas_outbox.c.tenant,
                pas_outbox.c.subscription_id,
                pas_outbox.c.kind,
                pas_outbox.c.event_number,
                pas_outbox.c.body,
                pas_outbox.c.attempts,
                sub.c.endpoint,
                sub.c.headers,
            )
            .select_from(
                pas_outbox.join(
                    sub,
                    and_(
                        sub.c.tenant == pas_outbox.c.tenant,
                        sub.c.subscription_id == pas_outbox.c.subscription_id,
                    ),
                )
            )
            .where(
                pas_outbox.c.status == "pending",
                pas_outbox.c.available_at <= stamp(now),
                or_(
                    sub.c.status == "active",
                    and_(pas_outbox.c.kind == "handshake", sub.c.status == "requested"),
                ),
            )
            .order_by(pas_outbox.c.id)
            .limit(limit)
        )
        claimed: list[Claimed] = []
        if not self._any(query):
            return claimed
        if is_postgresql(self._engine):
            query = query.with_for_update(skip_locked=True, of=pas_outbox)
        with self._writing() as connection, connection.begin():
            for row in connection.execute(query).mappings().all():
                token = uuid.uuid4().hex
                attempts = int(row["attempts"]) + 1
                connection.execute(
                    update(pas_outbox)
                    .where(pas_outbox.c.id == row["id"])
                    .values(available_at=stamp(now + lease), claim_token=token, attempts=attempts)
                )
                claimed.append(
                    Claimed(
                        row_id=int(row["id"]),
                        claim_token=token,
                        tenant=row["tenant"],
                        subscription_id=row["subscription_id"],
                        kind=row["kind"],
                        event_number=row["event_number"],
                        body=row["body"].encode(),
                        attempts=attempts,
                        endpoint=row["endpoint"],
                        headers=tuple(fhir_json.loads(row["headers"])),
                    )
                )
        return claimed

    def _mine(self, claimed: Claimed) -> tuple[ColumnElement[bool], ...]:
        return (
            pas_outbox.c.id == claimed.row_id,
            pas_outbox.c.claim_token == claimed.claim_token,
            pas_outbox.c.status == "pending",
        )

    def _subscription(self, claimed: Claimed) -> tuple[ColumnElement[bool], ...]:
        return (
            pas_subscription.c.tenant == claimed.tenant,
            pas_subscription.c.subscription_id == claimed.subscription_id,
        )

    def delivered(self, claimed: Claimed, now: datetime) -> bool:
        """Record a delivery; a handshake turns the subscription ``active``. False when the claim had
        expired and another process has the row (nothing changes). Event notifications are kept (for
        ``$events``); a delivered handshake or heartbeat is removed."""
        with self._writing() as connection, connection.begin():
            if claimed.kind == "event-notification":
                done = connection.execute(
                    update(pas_outbox)
                    .where(*self._mine(claimed))
                    .values(status="delivered", delivered_at=stamp(now), claim_token=None, last_error=None)
                ).rowcount
            else:
                done = connection.execute(delete(pas_outbox).where(*self._mine(claimed))).rowcount
            if not done:
                return False
            row = (
                connection.execute(select(pas_subscription).where(*self._subscription(claimed)))
                .mappings()
                .first()
            )
            if row is None:
                return True
            values: dict[str, object] = {"heartbeat_due_at": heartbeat_due(now, row["heartbeat_period"])}
            if claimed.kind == "handshake" and row["status"] == "requested":
                values.update(status="active", error=None, updated=stamp(now))
            connection.execute(update(pas_subscription).where(*self._subscription(claimed)).values(**values))
        return True

    def failed(self, claimed: Claimed, now: datetime, error: str, retry_at: datetime | None) -> bool:
        """Record a failed attempt: try again at ``retry_at``, or give up (row ``failed``, subscription
        ``error``, until the subscription is updated). A heartbeat is not retried: a late one says nothing."""
        with self._writing() as connection, connection.begin():
            if claimed.kind == "heartbeat":
                return bool(connection.execute(delete(pas_outbox).where(*self._mine(claimed))).rowcount)
            if retry_at is not None:
                values: dict[str, object] = {
                    "available_at": stamp(retry_at),
                    "claim_token": None,
                    "last_error": error[:2000],
                }
            else:
                values = {"status": "failed", "claim_token": None, "last_error": error[:2000]}
            done = connection.execute(
                update(pas_outbox).where(*self._mine(claimed)).values(**values)
            ).rowcount
            if done and retry_at is None:
                connection.execute(
                    update(pas_subscription)
                    .where(*self._subscription(claimed), pas_subscription.c.status != "off")
                    .values(status="error", error=error[:2000], updated=stamp(now))
                )
        return bool(done)

    def schedule_heartbeats(self, now: datetime, limit: int = 100) -> int:
        """Queue a heartbeat for each active subscription whose heartbeat period passed without a delivery."""
        query = (
            select(pas_subscription)
            .where(
                pas_subscription.c.status == "active",
                pas_subscription.c.heartbeat_period.is_not(None),
                pas_subscription.c.heartbeat_due_at.is_not(None),
                pas_subscription.c.heartbeat_due_at <= stamp(now),
            )
            .order_by(pas_subscription.c.heartbeat_due_at)
            .limit(limit)
        )
        queued = 0
        if not self._any(query):
            return queued
        if is_postgresql(self._engine):
            query = query.with_for_update(skip_locked=True)
        with self._writing() as connection, connection.begin():
            for row in connection.execute(query).mappings().all():
                record = record_of(row)
                store = SubscriptionStore(self._engine, row["tenant"])
                body = store.heartbeat_body(record, now)
                store.enqueue(connection, record.subscription_id, "heartbeat", None, body, now)
                connection.execute(
                    update(pas_subscription)
                    .where(
                        pas_subscription.c.tenant == row["tenant"],
                        pas_subscription.c.subscription_id == record.subscription_id,
                    )
                    .values(heartbeat_due_at=heartbeat_due(now, record.heartbeat_period))
                )
                queued += 1
        return queued

    def pending(self) -> Sequence[tuple[int, str, int]]:
        """(id, kind, attempts) of rows not yet delivered, oldest first (for operators and tests)."""
        query = (
            select(pas_outbox.c.id, pas_outbox.c.kind, pas_outbox.c.attempts)
            .where(pas_outbox.c.status == "pending")
            .order_by(pas_outbox.c.id)
        )
        with self._engine.connect() as connection:
            return [(int(i), str(k), int(a)) for i, k, a in connection.execute(query).all()]
