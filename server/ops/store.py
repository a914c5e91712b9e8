"""Operations state in the database (SQLAlchemy Core, tables from migration ``0011_ops``): staff users,
sessions, each request's history, peer-to-peer conversations and appeals; and the stored PAS requests read
back for the queue, the dashboard and the metrics.

Staff users and sessions belong to the store's own tenant (the payer). Requests are read across every
tenant (each submitter organization's submissions live in its own tenant), and a request's history,
assignment, peer-to-peer and appeal rows are keyed by the tenant of the request they are about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update

from server import fhir_json
from server.storage.schema import (
    ops_appeal,
    ops_event,
    ops_peer_to_peer,
    ops_session,
    ops_staff_user,
    pas_review,
    pas_submission,
)


@dataclass(frozen=True)
class StaffUser:
    username: str
    display_name: str
    role: str
    password_hash: str
    npi: str | None = None
    active: bool = True


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    expires: datetime


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]
    review_id: str | None = None


@dataclass(frozen=True)
class PeerToPeer:
    status: str  # requested | scheduled | completed
    scheduled_for: str | None
    notes: str
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class Appeal:
    status: str  # pending | approved | upheld
    received_at: datetime
    decided_at: datetime | None
    notes: str
    recorded_by: str


@dataclass(frozen=True)
class StoredRequest:
    """A ``pas_submission`` row (without its Bundles) with its review row."""

    tenant: str  # the submitter organization's tenant: with the submission id, names the request
    submission_id: str
    version: str
    created: str
    updated: str  # changes with every write of the submission: the key of parsed copies
    review_record: str | None
    assignee: str | None


def _dt(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


class OpsStore:
    def __init__(self, engine: Engine, tenant: str = "") -> None:
        self._engine = engine
        self._tenant = tenant

    # -- staff users ------------------------------------------------------------------------------------

    def add_user(self, user: StaffUser, created: datetime) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                ops_staff_user.insert().values(
                    tenant=self._tenant,
                    username=user.username,
                    display_name=user.display_name,
                    role=user.role,
                    password_hash=user.password_hash,
                    npi=user.npi,
                    active=user.active,
                    created=created.isoformat(),
                )
            )

    def user(self, username: str) -> StaffUser | None:
        query = select(ops_staff_user).where(
            ops_staff_user.c.tenant == self._tenant, ops_staff_user.c.username == username
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return StaffUser(
            row["username"], row["display_name"], row["role"], row["password_hash"], row["npi"], row["active"]
        )

    def users(self) -> list[StaffUser]:
        query = (
            select(ops_staff_user)
            .where(ops_staff_user.c.tenant == self._tenant)
            .order_by(ops_staff_user.c.username)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            StaffUser(r["username"], r["display_name"], r["role"], r["password_hash"], r["npi"], r["active"])
            for r in rows
        ]

    def locked_until(self, username: str) -> datetime | None:
        query = select(ops_staff_user.c.locked_until).where(
            ops_staff_user.c.tenant == self._tenant, ops_staff_user.c.username == username
        )
        with self._engine.connect() as connection:
            return _dt(connection.execute(query).scalar_one_or_none())

    def record_login(
        self, username: str, ok: bool, *, now: datetime, limit: int, lock_for: timedelta
    ) -> None:
        """Reset the failure count on success; count a failure, locking the user at ``limit`` failures."""
        key = (ops_staff_user.c.tenant == self._tenant) & (ops_staff_user.c.username == username)
        with self._engine.begin() as connection:
            if ok:
                connection.execute(
                    update(ops_staff_user).where(key).values(failed_logins=0, locked_until=None)
                )
                return
            connection.execute(
                update(ops_staff_user).where(key).values(failed_logins=ops_staff_user.c.failed_logins + 1)
            )
            failed = connection.execute(
                select(ops_staff_user.c.failed_logins).where(key)
            ).scalar_one_or_none()
            if failed is not None and failed >= limit:
                until = (now + lock_for).isoformat()
                connection.execute(
                    update(ops_staff_user).where(key).values(failed_logins=0, locked_until=until)
                )

    def set_password_hash(self, username: str, password_hash: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(ops_staff_user)
                .where(ops_staff_user.c.tenant == self._tenant, ops_staff_user.c.username == username)
                .values(password_hash=password_hash)
            )

    # -- sessions ---------------------------------------------------------------------------------------

    def add_session(
        self, session_hash: str, username: str, csrf_token: str, created: datetime, expires: datetime
    ) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(ops_session).where(ops_session.c.expires < created.isoformat()))
            connection.execute(
                ops_session.insert().values(
                    session_hash=session_hash,
                    tenant=self._tenant,
                    username=username,
                    csrf_token=csrf_token,
                    created=created.isoformat(),
                    expires=expires.isoformat(),
                )
            )

    def session(self, session_hash: str, now: datetime) -> Session | None:
        query = select(ops_session).where(
            ops_session.c.session_hash == session_hash, ops_session.c.tenant == self._tenant
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        expires = datetime.fromisoformat(row["expires"])
        if expires <= now:
            return None
        return Session(row["username"], row["csrf_token"], expires)

    def end_session(self, session_hash: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(ops_session).where(ops_session.c.session_hash == session_hash))

    # -- request history --------------------------------------------------------------------------------

    def add_event(
        self,
        tenant: str,
        submission_id: str,
        review_id: str | None,
        at: datetime,
        actor: str,
        kind: str,
        detail: dict[str, Any],
    ) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                ops_event.insert().values(
                    tenant=tenant,
                    submission_id=submission_id,
                    review_id=review_id,
                    at=at.isoformat(),
                    actor=actor,
                    kind=kind,
                    detail=fhir_json.dumps(detail).decode(),
                )
            )

    def events(self, tenant: str, submission_id: str) -> list[Event]:
        query = (
            select(ops_event)
            .where(ops_event.c.tenant == tenant, ops_event.c.submission_id == submission_id)
            .order_by(ops_event.c.at, ops_event.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            Event(
                datetime.fromisoformat(r["at"]),
                r["actor"],
                r["kind"],
                fhir_json.loads(r["detail"]),
                r["review_id"],
            )
            for r in rows
        ]

    # -- assignment, peer-to-peer, appeals ----------------------------------------------------------------

    def assign(self, tenant: str, review_id: str, username: str | None) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(pas_review)
                .where(pas_review.c.tenant == tenant, pas_review.c.review_id == review_id)
                .values(assignee=username)
            )
        return bool(result.rowcount)

    def set_peer_to_peer(self, tenant: str, review_id: str, value: PeerToPeer) -> None:
        values = {
            "status": value.status,
            "scheduled_for": value.scheduled_for,
            "notes": value.notes,
            "updated_by": value.updated_by,
            "updated_at": value.updated_at.isoformat(),
        }
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(ops_peer_to_peer)
                .where(ops_peer_to_peer.c.tenant == tenant, ops_peer_to_peer.c.review_id == review_id)
                .values(**values)
            )
            if not changed.rowcount:
                connection.execute(
                    ops_peer_to_peer.insert().values(tenant=tenant, review_id=review_id, **values)
                )

    def peer_to_peer(self, tenant: str, review_id: str) -> PeerToPeer | None:
        query = select(ops_peer_to_peer).where(
            ops_peer_to_peer.c.tenant == tenant, ops_peer_to_peer.c.review_id == review_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return PeerToPeer(
            row["status"],
            row["scheduled_for"],
            row["notes"],
            row["updated_by"],
            datetime.fromisoformat(row["updated_at"]),
        )

    def peer_to_peer_states(self) -> dict[tuple[str, str], str]:
        """``(tenant, review_id) -> status`` of every peer-to-peer conversation, every tenant (the queue)."""
        query = select(ops_peer_to_peer.c.tenant, ops_peer_to_peer.c.review_id, ops_peer_to_peer.c.status)
        with self._engine.connect() as connection:
            return {(row[0], row[1]): row[2] for row in connection.execute(query)}

    def set_appeal(self, tenant: str, submission_id: str, value: Appeal) -> None:
        values = {
            "status": value.status,
            "received_at": value.received_at.isoformat(),
            "decided_at": value.decided_at.isoformat() if value.decided_at else None,
            "notes": value.notes,
            "recorded_by": value.recorded_by,
        }
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(ops_appeal)
                .where(ops_appeal.c.tenant == tenant, ops_appeal.c.submission_id == submission_id)
                .values(**values)
            )
            if not changed.rowcount:
                connection.execute(
                    ops_appeal.insert().values(tenant=tenant, submission_id=submission_id, **values)
                )

    def appeals(self) -> dict[tuple[str, str], Appeal]:
        """``(tenant, submission_id) -> appeal`` of every tenant."""
        query = select(ops_appeal)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return {
            (r["tenant"], r["submission_id"]): Appeal(
                r["status"],
                datetime.fromisoformat(r["received_at"]),
                _dt(r["decided_at"]),
                r["notes"],
                r["recorded_by"],
            )
            for r in rows
        }

    # -- stored PAS requests ------------------------------------------------------------------------------

    def requests(
        self, *, open_only: bool = False, submission_id: str | None = None, tenant: str | None = None
    ) -> list[StoredRequest]:
        """Stored submissions of every tenant (or of ``tenant``) with their review rows (``open_only``:
        those with an undecided review)."""
        joined = pas_submission.outerjoin(
            pas_review,
            (pas_review.c.tenant == pas_submission.c.tenant)
            & (pas_review.c.submission_id == pas_submission.c.submission_id),
        )
        query = select(
            pas_submission.c.tenant,
            pas_submission.c.submission_id,
            pas_submission.c.version,
            pas_submission.c.created,
            pas_submission.c.updated,
            pas_review.c.record,
            pas_review.c.assignee,
        ).select_from(joined)
        if tenant is not None:
            query = query.where(pas_submission.c.tenant == tenant)
        if open_only:
            query = query.where(pas_review.c.status.is_not(None), pas_review.c.status != "decided")
        if submission_id is not None:
            query = query.where(pas_submission.c.submission_id == submission_id)
        query = query.order_by(
            pas_submission.c.created, pas_submission.c.tenant, pas_submission.c.submission_id
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [StoredRequest(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def bodies(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str, str]]:
        """``(tenant, submission_id) -> (updated, request Bundle JSON, Decision JSON)`` for the given
        submissions (any tenants)."""
        out: dict[tuple[str, str], tuple[str, str, str]] = {}
        wanted = set(keys)
        with self._engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = sorted({submission_id for _, submission_id in keys[start : start + 500]})
                query = select(
                    pas_submission.c.tenant,
                    pas_submission.c.submission_id,
                    pas_submission.c.updated,
                    pas_submission.c.request,
                    pas_submission.c.decision,
                ).where(pas_submission.c.submission_id.in_(chunk))
                for row in connection.execute(query):
                    if (row[0], row[1]) in wanted:
                        out[(row[0], row[1])] = (row[2], row[3], row[4])
        return out
