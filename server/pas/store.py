"""PAS submissions and the review queue in the database (SQLAlchemy Core; tables in server/storage/schema.py).

Each accepted ``Claim/$submit`` is one ``pas_submission`` row (request and response Bundles as exact JSON
text, the core's Decision through :mod:`server.pas.codec`), found again by any of its Claim identifier
tokens in ``pas_submission_key``: replays, updates, cancels and ``$inquire`` work from any process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, false, func, select, true, update
from sqlalchemy.exc import IntegrityError

from server import fhir_json
from server.storage.schema import (
    pas_review,
    pas_submission,
    pas_submission_key,
    pas_submission_member,
    pas_submission_trace,
)

from . import codec
from .codes import ReviewAction
from .decision import Decision
from .inquiry import StoredAuthorization
from .request import parse_pas_request
from .review import ReviewItem, ReviewStatus
from .submission import StoredSubmission
from .versions import PasVersion


@dataclass(frozen=True)
class SubmissionRecord:
    """One stored submission: its row id and the core's view of it."""

    submission_id: str
    version: PasVersion
    stored: StoredSubmission


@dataclass(frozen=True)
class QueueEntry:
    """A review-queue row: the core's ReviewItem plus where it lives and who has it."""

    submission_id: str
    item: ReviewItem
    assignee: str | None = None


class IdentifierTaken(Exception):
    """A Claim identifier key was inserted by another request between lookup and save."""


def submission_status(decision: Decision) -> str:
    if decision.pended:
        return "pended"
    if decision.items and all(i.action is ReviewAction.CANCELLED for i in decision.items):
        return "cancelled"
    return "final"


class PasStore:
    """PAS persistence for one tenant."""

    def __init__(self, engine: Engine, tenant: str = "") -> None:
        self._engine = engine
        self._tenant = tenant

    @property
    def tenant(self) -> str:
        return self._tenant

    def for_tenant(self, tenant: str) -> PasStore:
        """The same database seen by another tenant."""
        return PasStore(self._engine, tenant)

    def _within(self, tenants: Sequence[str] | None | Literal["own"]) -> Any:
        """The review rows' tenant condition: this store's tenant, ``tenants``, or (``None``) every one."""
        if tenants == "own":
            return pas_review.c.tenant == self._tenant
        if tenants is None:
            return true()
        return pas_review.c.tenant.in_(tuple(tenants)) if tenants else false()

    # -- submissions ------------------------------------------------------------------------------------

    def find(self, version: PasVersion, tokens: Sequence[str]) -> SubmissionRecord | None:
        """The submission any of ``tokens`` (Claim identifier ``system|value``) names, in ``tokens`` order."""
        if not tokens:
            return None
        query = select(pas_submission_key.c.token, pas_submission_key.c.submission_id).where(
            pas_submission_key.c.tenant == self._tenant,
            pas_submission_key.c.version == version.value,
            pas_submission_key.c.token.in_(list(tokens)),
        )
        with self._engine.connect() as connection:
            found = {row[0]: row[1] for row in connection.execute(query)}
            for token in tokens:
                if token in found:
                    return self._load(connection, found[token])
        return None

    def get(self, submission_id: str) -> SubmissionRecord | None:
        with self._engine.connect() as connection:
            return self._load(connection, submission_id)

    def request_bundle(self, submission_id: str) -> dict[str, Any] | None:
        """The request Bundle as submitted (exact JSON)."""
        query = select(pas_submission.c.request).where(
            pas_submission.c.tenant == self._tenant, pas_submission.c.submission_id == submission_id
        )
        with self._engine.connect() as connection:
            raw = connection.execute(query).scalar_one_or_none()
        if raw is None:
            return None
        value: dict[str, Any] = fhir_json.loads(raw)
        return value

    def for_members(self, version: PasVersion, members: Iterable[str]) -> list[SubmissionRecord]:
        """The submissions of one PAS version whose member or patient identifier values include any of
        ``members`` (the ``$inquire`` candidates: every inquiry must match on one)."""
        query = (
            select(pas_submission_member.c.submission_id)
            .where(
                pas_submission_member.c.tenant == self._tenant,
                pas_submission_member.c.version == version.value,
                pas_submission_member.c.member.in_(sorted(set(members))),
            )
            .distinct()
        )
        with self._engine.connect() as connection:
            ids = connection.execute(query).scalars().all()
            return [r for r in (self._load(connection, i) for i in ids) if r is not None]

    def _load(self, connection: Connection, submission_id: str) -> SubmissionRecord | None:
        query = select(pas_submission).where(
            pas_submission.c.tenant == self._tenant, pas_submission.c.submission_id == submission_id
        )
        row = connection.execute(query).mappings().first()
        if row is None:
            return None
        version = PasVersion(row["version"])
        stored = StoredSubmission(
            request=parse_pas_request(fhir_json.loads(row["request"]), version),
            fingerprint=row["fingerprint"],
            decision=codec.loads(Decision, row["decision"]),
            response=fhir_json.loads(row["response"]),
            claim_response_id=row["claim_response_id"],
        )
        return SubmissionRecord(submission_id, version, stored)

    def save(
        self,
        submission_id: str,
        version: PasVersion,
        stored: StoredSubmission,
        request_bundle: Mapping[str, Any],
        tokens: Iterable[str],
        at: str,
        review: ReviewItem | None = None,
        *,
        existing: bool = False,
        updated_review: ReviewItem | None = None,
        also: Callable[[Connection], object] | None = None,
    ) -> None:
        """Insert (or, ``existing``, replace) a submission, add its identifier keys and its review item, in
        one transaction. Raises :class:`IdentifierTaken` when a key was taken concurrently (nothing saved).

        ``updated_review`` (a decided or otherwise changed review item) and ``also`` (e.g. queueing
        notifications) are written in the same transaction, so a decision is never saved without them."""
        values = {
            "fingerprint": stored.fingerprint,
            "claim_response_id": stored.claim_response_id,
            "status": submission_status(stored.decision),
            "request": fhir_json.dumps(request_bundle).decode(),
            "response": fhir_json.dumps(stored.response).decode(),
            "decision": codec.dumps(stored.decision),
            "updated": at,
        }
        try:
            with self._engine.begin() as connection:
                if existing:
                    connection.execute(
                        update(pas_submission)
                        .where(
                            pas_submission.c.tenant == self._tenant,
                            pas_submission.c.submission_id == submission_id,
                        )
                        .values(**values)
                    )
                else:
                    connection.execute(
                        pas_submission.insert().values(
                            tenant=self._tenant,
                            submission_id=submission_id,
                            version=version.value,
                            created=at,
                            **values,
                        )
                    )
                known = set(
                    connection.execute(
                        select(pas_submission_key.c.token).where(
                            pas_submission_key.c.tenant == self._tenant,
                            pas_submission_key.c.version == version.value,
                            pas_submission_key.c.submission_id == submission_id,
                        )
                    )
                    .scalars()
                    .all()
                )
                for token in dict.fromkeys(tokens):
                    if token not in known:
                        connection.execute(
                            pas_submission_key.insert().values(
                                tenant=self._tenant,
                                version=version.value,
                                token=token,
                                submission_id=submission_id,
                            )
                        )
                self._add_members(connection, submission_id, version, stored)
                self._add_traces(connection, submission_id, stored)
                if review is not None:
                    self._put_review(connection, submission_id, review, insert=True)
                if updated_review is not None:
                    self._put_review(connection, submission_id, updated_review, insert=False)
                if also is not None:
                    also(connection)
        except IntegrityError:
            raise IdentifierTaken(submission_id) from None

    def _add_members(
        self, connection: Connection, submission_id: str, version: PasVersion, stored: StoredSubmission
    ) -> None:
        view = StoredAuthorization.of(stored.request, stored.decision, stored.response)
        members = {i.value for i in (*view.member_ids, *view.patient_identifiers)}
        key = (
            pas_submission_member.c.tenant == self._tenant,
            pas_submission_member.c.version == version.value,
            pas_submission_member.c.submission_id == submission_id,
        )
        known = set(connection.execute(select(pas_submission_member.c.member).where(*key)).scalars().all())
        for member in sorted(members - known):
            connection.execute(
                pas_submission_member.insert().values(
                    tenant=self._tenant, version=version.value, member=member, submission_id=submission_id
                )
            )

    def _add_traces(self, connection: Connection, submission_id: str, stored: StoredSubmission) -> None:
        request = stored.request
        traces = {t.value for item in request.items for t in item.trace_numbers}
        traces |= {i.value for i in request.claim_identifiers}
        key = (
            pas_submission_trace.c.tenant == self._tenant,
            pas_submission_trace.c.submission_id == submission_id,
        )
        known = set(connection.execute(select(pas_submission_trace.c.trace).where(*key)).scalars().all())
        for trace in sorted(traces - known):
            connection.execute(
                pas_submission_trace.insert().values(
                    tenant=self._tenant, trace=trace, submission_id=submission_id
                )
            )

    def find_by_trace(self, trace: str) -> SubmissionRecord | None:
        """The submission (of any PAS version) an item trace number or Claim identifier value names; the
        most recently updated one when several do (trace numbers are unique per submitter, not globally)."""
        query = (
            select(pas_submission.c.submission_id)
            .join(
                pas_submission_trace,
                (pas_submission_trace.c.tenant == pas_submission.c.tenant)
                & (pas_submission_trace.c.submission_id == pas_submission.c.submission_id),
            )
            .where(pas_submission_trace.c.tenant == self._tenant, pas_submission_trace.c.trace == trace)
            .order_by(pas_submission.c.updated.desc(), pas_submission.c.submission_id)
            .limit(1)
        )
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
            return None if found is None else self._load(connection, found)

    # -- review queue -----------------------------------------------------------------------------------

    def _put_review(
        self, connection: Connection, submission_id: str, item: ReviewItem, *, insert: bool
    ) -> None:
        values = {
            "due_at": item.due_at.isoformat(),
            "urgency": item.urgency.value,
            "status": item.status.value,
            "record": codec.dumps(item),
        }
        if insert:
            connection.execute(
                pas_review.insert().values(
                    tenant=self._tenant, review_id=item.review_id, submission_id=submission_id, **values
                )
            )
        else:
            connection.execute(
                update(pas_review)
                .where(pas_review.c.tenant == self._tenant, pas_review.c.review_id == item.review_id)
                .values(**values)
            )

    def update_review(self, item: ReviewItem) -> None:
        with self._engine.begin() as connection:
            self._put_review(connection, "", item, insert=False)

    def queue(
        self, *, include_decided: bool = False, tenants: Sequence[str] | None | Literal["own"] = "own"
    ) -> list[QueueEntry]:
        """Open review items, earliest due first (of ``tenants``: see ``_within``)."""
        query = select(pas_review).where(self._within(tenants))
        if not include_decided:
            query = query.where(pas_review.c.status != ReviewStatus.DECIDED.value)
        query = query.order_by(pas_review.c.due_at, pas_review.c.review_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            QueueEntry(r["submission_id"], codec.loads(ReviewItem, r["record"]), r["assignee"]) for r in rows
        ]

    def review(self, review_id: str) -> QueueEntry | None:
        query = select(pas_review).where(
            pas_review.c.tenant == self._tenant, pas_review.c.review_id == review_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        return QueueEntry(row["submission_id"], codec.loads(ReviewItem, row["record"]), row["assignee"])

    def review_tenant(self, review_id: str, tenants: Sequence[str] | None) -> str | None:
        """The tenant holding review ``review_id`` among ``tenants`` (``None``: any), or ``None``."""
        query = select(pas_review.c.tenant).where(self._within(tenants), pas_review.c.review_id == review_id)
        with self._engine.connect() as connection:
            row = connection.execute(query.order_by(pas_review.c.tenant)).first()
        return None if row is None else str(row.tenant)

    def submission_tenant(self, submission_id: str) -> str | None:
        """The tenant holding submission ``submission_id`` (any tenant), or ``None``."""
        query = select(pas_submission.c.tenant).where(pas_submission.c.submission_id == submission_id)
        with self._engine.connect() as connection:
            row = connection.execute(query.order_by(pas_submission.c.tenant)).first()
        return None if row is None else str(row.tenant)

    def counts(self) -> dict[str, int]:
        """Row counts per PAS table (for operators and tests)."""
        out: dict[str, int] = {}
        with self._engine.connect() as connection:
            for table in (
                pas_submission,
                pas_submission_key,
                pas_submission_member,
                pas_submission_trace,
                pas_review,
            ):
                count = select(func.count()).select_from(table).where(table.c.tenant == self._tenant)
                out[table.name] = int(connection.execute(count).scalar_one())
        return out
