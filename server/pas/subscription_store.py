"""PAS Subscriptions in the database, and the notifications they are owed, written to the outbox.

Each Subscription is one ``pas_subscription`` row: the resource as accepted, where notifications go, the
submitter organizations it filters on (PAS spec-58, so tenancy can be applied to it) and its event
counter. Creating or updating one queues a handshake; a reviewer's decision queues one event notification
per matching subscription, in the caller's transaction (:meth:`SubscriptionStore.enqueue_result`), so a
committed decision always has its notifications. Delivery is :mod:`server.pas.outbox` and
:mod:`server.pas.delivery`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from igs.outcome import Failure, OperationOutcomeError
from server import fhir_json
from server.storage.engine import WRITE_OPTION
from server.storage.schema import pas_outbox, pas_subscription

from . import urls
from .fhirdata import Ident, Json
from .notification import (
    NotificationType,
    OrgFilter,
    SubscriptionRef,
    handshake,
    notification_bundle,
    status_parameters,
)
from .subscription import AcceptedSubscription
from .versions import PasVersion, PayloadContent

LIVE_STATUSES = ("requested", "active", "error")


def stamp(moment: datetime) -> str:
    """A UTC instant with fixed width, so stored times compare as strings on both engines."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class SubscriptionRecord:
    """One stored Subscription."""

    subscription_id: str
    version: PasVersion
    status: str
    version_id: int
    resource: Json
    url: str
    fhir_base: str
    endpoint: str
    payload: PayloadContent
    org_filter: OrgFilter
    heartbeat_period: int | None
    events: int
    error: str | None
    updated: str

    def ref(self) -> SubscriptionRef:
        return SubscriptionRef(self.url, status=self.status)  # type: ignore[arg-type]

    def to_fhir(self) -> Json:
        """The Subscription as served: as accepted, with its id, current status and version."""
        out = dict(self.resource)
        out["id"] = self.subscription_id
        out["status"] = self.status
        meta = dict(out.get("meta") or {})
        meta["versionId"] = str(self.version_id)
        meta["lastUpdated"] = _fhir_instant(self.updated)
        out["meta"] = meta
        if self.error and self.status == "error":
            out["error"] = self.error
        else:
            out.pop("error", None)
        return out


def _fhir_instant(value: str) -> str:
    return parse_stamp(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _filter_json(org_filter: OrgFilter) -> str:
    return fhir_json.dumps([[i.system, i.value] for i in org_filter.identifiers]).decode()


def _filter_of(raw: str) -> OrgFilter:
    return OrgFilter(tuple(Ident(system, value) for system, value in fhir_json.loads(raw)))


def record_of(row: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=row["subscription_id"],
        version=PasVersion(row["version"]),
        status=row["status"],
        version_id=int(row["version_id"]),
        resource=fhir_json.loads(row["resource"]),
        url=row["url"],
        fhir_base=row["fhir_base"],
        endpoint=row["endpoint"],
        payload=row["payload"],
        org_filter=_filter_of(row["org_filter"]),
        heartbeat_period=row["heartbeat_period"],
        events=int(row["events"]),
        error=row["error"],
        updated=row["updated"],
    )


def _uuid() -> str:
    return str(uuid.uuid4())


class SubscriptionStore:
    """PAS Subscriptions for one tenant, and enqueueing their notifications."""

    def __init__(self, engine: Engine, tenant: str = "", *, new_id: Callable[[], str] = _uuid) -> None:
        self._engine = engine
        self._tenant = tenant
        self._new_id = new_id

    @property
    def engine(self) -> Engine:
        return self._engine

    def for_tenant(self, tenant: str) -> SubscriptionStore:
        """The same database seen by another tenant (its Subscriptions and their notifications)."""
        return SubscriptionStore(self._engine, tenant, new_id=self._new_id)

    def _writing(self) -> Connection:
        # SQLite: take the write lock at BEGIN, so a read-then-write never fails against the worker's writes
        return self._engine.connect().execution_options(**{WRITE_OPTION: True})

    def _key(self, subscription_id: str) -> Any:
        return (
            pas_subscription.c.tenant == self._tenant,
            pas_subscription.c.subscription_id == subscription_id,
        )

    # -- Subscription create, read, update, delete ------------------------------------------------------

    def put(
        self,
        version: PasVersion,
        subscription_id: str,
        accepted: AcceptedSubscription,
        *,
        url: str,
        fhir_base: str,
        now: datetime,
    ) -> tuple[SubscriptionRecord, bool]:
        """Create or replace a Subscription (status ``requested``) and queue its handshake, in one
        transaction. Notifications that failed for good before are queued again (nothing is dropped).
        Returns the record and whether it was created."""
        at = stamp(now)
        values = {
            "version": version.value,
            "status": "requested",
            "resource": fhir_json.dumps(accepted.resource).decode(),
            "url": url,
            "fhir_base": fhir_base,
            "endpoint": accepted.endpoint,
            "payload": accepted.payload,
            "headers": fhir_json.dumps(list(accepted.headers)).decode(),
            "org_filter": _filter_json(accepted.org_filter),
            "heartbeat_period": accepted.heartbeat_period,
            "heartbeat_due_at": None,
            "error": None,
            "updated": at,
        }
        with self._writing() as connection, connection.begin():
            row = (
                connection.execute(
                    select(pas_subscription).where(*self._key(subscription_id)).with_for_update()
                )
                .mappings()
                .first()
            )
            if row is not None and row["version"] != version.value:
                raise OperationOutcomeError.of(
                    Failure.CONFLICT,
                    f"Subscription {subscription_id!r} belongs to PAS {row['version']}, not {version.value}",
                )
            if row is None:
                connection.execute(
                    pas_subscription.insert().values(
                        tenant=self._tenant,
                        subscription_id=subscription_id,
                        version_id=1,
                        events=0,
                        created=at,
                        **values,
                    )
                )
            else:
                connection.execute(
                    update(pas_subscription)
                    .where(*self._key(subscription_id))
                    .values(version_id=pas_subscription.c.version_id + 1, **values)
                )
                connection.execute(
                    update(pas_outbox)
                    .where(
                        pas_outbox.c.tenant == self._tenant,
                        pas_outbox.c.subscription_id == subscription_id,
                        pas_outbox.c.status == "failed",
                        pas_outbox.c.kind == "event-notification",
                    )
                    .values(status="pending", attempts=0, available_at=at, claim_token=None)
                )
            record = self._load(connection, subscription_id)
            assert record is not None
            body = handshake(record.ref(), bundle_id=self._new_id(), status_id=self._new_id(), now=now)
            self.enqueue(connection, subscription_id, "handshake", None, body, now)
        return record, row is None

    def get(self, subscription_id: str, version: PasVersion | None = None) -> SubscriptionRecord | None:
        with self._engine.connect() as connection:
            record = self._load(connection, subscription_id)
        if record is None or (version is not None and record.version is not version):
            return None
        return record

    def of_version(self, version: PasVersion) -> list[SubscriptionRecord]:
        query = (
            select(pas_subscription)
            .where(pas_subscription.c.tenant == self._tenant, pas_subscription.c.version == version.value)
            .order_by(pas_subscription.c.created, pas_subscription.c.subscription_id)
        )
        with self._engine.connect() as connection:
            return [record_of(r) for r in connection.execute(query).mappings()]

    def delete(self, subscription_id: str, version: PasVersion) -> bool:
        """Remove a Subscription and the notifications not yet delivered to it."""
        with self._writing() as connection, connection.begin():
            record = self._load(connection, subscription_id)
            if record is None or record.version is not version:
                return False
            connection.execute(
                delete(pas_outbox).where(
                    pas_outbox.c.tenant == self._tenant,
                    pas_outbox.c.subscription_id == subscription_id,
                    pas_outbox.c.status != "delivered",
                )
            )
            connection.execute(delete(pas_subscription).where(*self._key(subscription_id)))
        return True

    def _load(self, connection: Connection, subscription_id: str) -> SubscriptionRecord | None:
        row = (
            connection.execute(select(pas_subscription).where(*self._key(subscription_id))).mappings().first()
        )
        return record_of(row) if row is not None else None

    # -- $status and $events -----------------------------------------------------------------------------

    def status_bundle(self, record: SubscriptionRecord, *, bundle_id: str, now: datetime) -> Json:
        """``Subscription/{id}/$status``: a searchset Bundle of one SubscriptionStatus (query-status)."""
        status = {**status_parameters(record.ref(), "query-status", record.events), "id": self._new_id()}
        return {
            "resourceType": "Bundle",
            "id": bundle_id,
            "type": "searchset",
            "timestamp": _fhir_instant(stamp(now)),
            "total": 1,
            "entry": [
                {"fullUrl": f"urn:uuid:{status['id']}", "resource": status, "search": {"mode": "match"}}
            ],
        }

    def events_bundle(
        self,
        record: SubscriptionRecord,
        *,
        since: int | None,
        until: int | None,
        bundle_id: str,
        now: datetime,
    ) -> Json:
        """``Subscription/{id}/$events``: past event notifications again (query-event), oldest first."""
        query = select(pas_outbox.c.body).where(
            pas_outbox.c.tenant == self._tenant,
            pas_outbox.c.subscription_id == record.subscription_id,
            pas_outbox.c.kind == "event-notification",
        )
        if since is not None:
            query = query.where(pas_outbox.c.event_number >= since)
        if until is not None:
            query = query.where(pas_outbox.c.event_number <= until)
        with self._engine.connect() as connection:
            bodies = [
                fhir_json.loads(b)
                for b in connection.execute(query.order_by(pas_outbox.c.event_number)).scalars()
            ]
        events: list[Json] = []
        resources: list[Json] = []
        for body in bodies:
            entries = body.get("entry") or []
            if entries:
                events.extend(
                    p
                    for p in entries[0]["resource"].get("parameter", [])
                    if p.get("name") == "notification-event"
                )
                resources.extend(entries[1:])
        status = status_parameters(record.ref(), "query-event", record.events)
        status["parameter"].extend(events)
        status["id"] = self._new_id()
        return {
            "resourceType": "Bundle",
            "id": bundle_id,
            "meta": {"profile": [urls.BACKPORT_SUBSCRIPTION_NOTIFICATION_R4]},
            "type": "history",
            "timestamp": _fhir_instant(stamp(now)),
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{status['id']}",
                    "resource": status,
                    "request": {"method": "GET", "url": f"{record.url}/$events"},
                    "response": {"status": "200"},
                },
                *resources,
            ],
        }

    # -- enqueueing notifications ------------------------------------------------------------------------

    def enqueue_result(
        self,
        connection: Connection,
        version: PasVersion,
        submitter: Sequence[Ident],
        response_bundle: Json,
        claim_response_id: str,
        now: datetime,
    ) -> int:
        """Queue a result-available notification for every live subscription of ``version`` whose org
        filter matches the submitter, in the caller's transaction. Returns how many were queued."""
        rows = connection.execute(
            select(pas_subscription.c.subscription_id, pas_subscription.c.org_filter)
            .where(
                pas_subscription.c.tenant == self._tenant,
                pas_subscription.c.version == version.value,
                pas_subscription.c.status.in_(LIVE_STATUSES),
            )
            .order_by(pas_subscription.c.subscription_id)
        ).all()
        queued = 0
        for subscription_id, raw_filter in rows:
            if not _filter_of(raw_filter).matches(submitter):
                continue
            number = connection.execute(
                update(pas_subscription)
                .where(*self._key(subscription_id))
                .values(events=pas_subscription.c.events + 1)
                .returning(pas_subscription.c.events)
            ).scalar_one()
            record = self._load(connection, subscription_id)
            assert record is not None
            body = self._event_body(record, int(number), response_bundle, claim_response_id, now)
            self.enqueue(connection, subscription_id, "event-notification", int(number), body, now)
            queued += 1
        return queued

    def _event_body(
        self,
        record: SubscriptionRecord,
        number: int,
        response_bundle: Json,
        claim_response_id: str,
        now: datetime,
    ) -> Json:
        # full-resource: the focus is the Response Bundle, carried as the next entry (PAS spec-61);
        # id-only (2.0.1): the focus is the ClaimResponse, readable under the FHIR base.
        if record.payload == "full-resource":
            focus = f"{record.fhir_base}/Bundle/{response_bundle.get('id') or self._new_id()}"
        else:
            focus = f"{record.fhir_base}/ClaimResponse/{claim_response_id}"
        return notification_bundle(
            record.ref(),
            bundle_id=self._new_id(),
            status_id=self._new_id(),
            now=now,
            notification_type="event-notification",
            events_since_start=number,
            event_number=number,
            response_bundle=response_bundle,
            response_bundle_url=focus,
            payload=record.payload,
        )

    def heartbeat_body(self, record: SubscriptionRecord, now: datetime) -> Json:
        return notification_bundle(
            record.ref(),
            bundle_id=self._new_id(),
            status_id=self._new_id(),
            now=now,
            notification_type="heartbeat",
            events_since_start=record.events,
        )

    def enqueue(
        self,
        connection: Connection,
        subscription_id: str,
        kind: NotificationType,
        event_number: int | None,
        body: Json,
        now: datetime,
    ) -> None:
        connection.execute(
            pas_outbox.insert().values(
                tenant=self._tenant,
                subscription_id=subscription_id,
                kind=kind,
                event_number=event_number,
                body=fhir_json.dumps(body).decode(),
                status="pending",
                attempts=0,
                available_at=stamp(now),
                created=stamp(now),
            )
        )

    def counts(self) -> dict[str, int]:
        """Outbox rows per status (for operators and tests)."""
        query = (
            select(pas_outbox.c.status, func.count())
            .where(pas_outbox.c.tenant == self._tenant)
            .group_by(pas_outbox.c.status)
        )
        with self._engine.connect() as connection:
            return {status: int(n) for status, n in connection.execute(query).all()}


def heartbeat_due(now: datetime, period: int | None) -> str | None:
    """When a heartbeat is next due: one period after the last delivery."""
    return stamp(now + timedelta(seconds=period)) if period else None
