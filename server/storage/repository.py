"""The resource repository: versioned FHIR resources with their search index, on SQLite or PostgreSQL.

Spec: https://hl7.org/fhir/R4/http.html (create, read, vread, update, delete, history, search) and
https://hl7.org/fhir/R4/resource.html#Meta (server-assigned ``id``, ``meta.versionId``,
``meta.lastUpdated``). Each write stores the exact JSON bytes served afterwards (decimals untouched) and
rewrites the index rows in the same database transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from igs.outcome import Failure, OperationOutcomeError, invalid, not_found
from server.fhir_json import dumps, loads
from server.resource_types import is_supported
from server.search.definitions import SearchRegistry
from server.search.extract import Extractor
from server.search.query import ID, Include, SearchQuery, parse_search
from server.search.values import normalize, parse_date_range, timestamp
from server.storage.engine import WRITE_OPTION, is_postgresql
from server.storage.schema import (
    INDEX_TABLES,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    resource,
    resource_version,
)
from server.storage.search_sql import criterion_clause, sort_value

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TenantAccess(Protocol):
    """Which tenants' resources a caller sees and where its writes go (``server/security/access.py``).

    A repository without one sees and writes only its own ``tenant``."""

    def readable(self, resource_type: str | None) -> tuple[str, ...] | None:
        """The tenants whose ``resource_type`` resources the caller reads; ``None``: every tenant
        (``resource_type`` ``None``: system-level history)."""
        ...

    def tenant_for_new(self, resource_type: str) -> str:
        """The tenant a new resource is stored in (raises 403/405/422 OperationOutcomes)."""
        ...

    def check_write(self, resource_type: str, resource_id: str, owner: str) -> None:
        """Raise unless the caller may change this existing (readable) resource."""
        ...


@dataclass(frozen=True)
class StoredResource:
    """One version of a resource as stored: its exact JSON bytes (empty for a deletion)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: str  # fixed-width UTC text, see server.search.values.timestamp
    deleted: bool
    raw: bytes
    tenant: str = ""

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def last_updated_at(self) -> datetime:
        return datetime.fromisoformat(self.last_updated).replace(tzinfo=UTC)

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"

    def resource(self) -> dict[str, Any]:
        """The resource parsed with exact decimals."""
        value = loads(self.raw)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True)
class WriteResult:
    """A write's stored version; ``created`` is false when an update or a conditional create matched."""

    stored: StoredResource
    created: bool


@dataclass(frozen=True)
class SearchPage:
    """One page of search results plus included resources."""

    query: SearchQuery
    total: int | None
    matches: tuple[StoredResource, ...]
    included: tuple[StoredResource, ...]
    has_next: bool


def check_type(resource_type: str) -> None:
    if not is_supported(resource_type):
        raise not_found(f"Resource type {resource_type!r} is not supported by this server")


def check_id(resource_id: str) -> None:
    if not ID_PATTERN.match(resource_id):
        raise invalid(f"{resource_id!r} is not a valid FHIR id ([A-Za-z0-9-.], at most 64 characters)", "id")


def instant(stamp: str) -> str:
    """A FHIR instant for a stored timestamp."""
    return f"{stamp}+00:00"


def _with_server_fields(body: dict[str, Any], resource_id: str, version_id: int, stamp: str) -> bytes:
    meta = body.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise invalid("meta must be a JSON object", "meta")
    new_meta = {**(meta or {}), "versionId": str(version_id), "lastUpdated": instant(stamp)}
    ordered: dict[str, Any] = {"resourceType": body["resourceType"], "id": resource_id, "meta": new_meta}
    for key, value in body.items():
        if key not in ordered:
            ordered[key] = value
    return dumps(ordered)


def _row_to_stored(row: Any) -> StoredResource:
    return StoredResource(
        resource_type=row.resource_type,
        id=row.resource_id,
        version_id=row.version_id,
        last_updated=row.last_updated,
        deleted=bool(row.deleted),
        raw=bytes(row.raw) if row.raw is not None else b"",
        tenant=row.tenant,
    )


class Transaction:
    """Repository operations inside one database transaction (a transaction Bundle is one of these)."""

    def __init__(self, connection: Connection, repository: Repository) -> None:
        self._conn = connection
        self._repo = repository
        self._tenant = repository.tenant
        self._access = repository.access

    def seen_as(self, repository: Repository) -> Transaction:
        """This database transaction through another view of the same store (``for_tenant`` /
        ``acting_for``): one atomic write that touches resources of several tenants."""
        return Transaction(self._conn, repository)

    def _visible(self, column: Any, resource_type: str | None) -> ColumnElement[bool]:
        """The tenant condition on ``column`` for reading ``resource_type``: in SQL, so paging holds."""
        if self._access is None:
            return column == self._tenant  # type: ignore[no-any-return]
        tenants = self._access.readable(resource_type)
        if tenants is None:
            return true()
        if not tenants:
            return false()
        if len(tenants) == 1:
            return column == tenants[0]  # type: ignore[no-any-return]
        return column.in_(tenants)  # type: ignore[no-any-return]

    def _index_visible(self, table: Any, resource_type: str) -> ColumnElement[bool]:
        return self._visible(table.c.tenant, resource_type)

    # --- reads -----------------------------------------------------------------------------------

    def _current(self) -> Select[Any]:
        return select(
            resource.c.tenant,
            resource.c.resource_type,
            resource.c.resource_id,
            resource.c.version_id,
            resource.c.last_updated,
            resource.c.deleted,
            resource_version.c.raw,
        ).join(
            resource_version,
            and_(
                resource_version.c.tenant == resource.c.tenant,
                resource_version.c.resource_type == resource.c.resource_type,
                resource_version.c.resource_id == resource.c.resource_id,
                resource_version.c.version_id == resource.c.version_id,
            ),
        )

    def _key(self, resource_type: str, resource_id: str, tenant: str | None = None) -> Any:
        """The row of one resource: in ``tenant``, or in any tenant the caller reads."""
        return and_(
            self._visible(resource.c.tenant, resource_type)
            if tenant is None
            else resource.c.tenant == tenant,
            resource.c.resource_type == resource_type,
            resource.c.resource_id == resource_id,
        )

    def find(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The current version (possibly a deletion), or None when the id was never used (or belongs to
        a tenant the caller does not read: the two are indistinguishable)."""
        row = self._conn.execute(
            self._current().where(self._key(resource_type, resource_id)).order_by(resource.c.tenant)
        ).first()
        return None if row is None else _row_to_stored(row)

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        """read (https://hl7.org/fhir/R4/http.html#read): 404 unknown, 410 deleted."""
        check_type(resource_type)
        stored = self.find(resource_type, resource_id)
        if stored is None:
            raise not_found(f"{resource_type}/{resource_id} is not known")
        if stored.deleted:
            raise OperationOutcomeError.of(
                Failure.GONE, f"{resource_type}/{resource_id} was deleted", headers={"ETag": stored.etag}
            )
        return stored

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> StoredResource:
        """vread (https://hl7.org/fhir/R4/http.html#vread)."""
        check_type(resource_type)
        if not version_id.isdigit():
            raise not_found(f"{resource_type}/{resource_id} has no version {version_id!r}")
        row = self._conn.execute(
            select(resource_version)
            .where(
                self._visible(resource_version.c.tenant, resource_type),
                resource_version.c.resource_type == resource_type,
                resource_version.c.resource_id == resource_id,
                resource_version.c.version_id == int(version_id),
            )
            .order_by(resource_version.c.tenant)
        ).first()
        if row is None:
            raise not_found(f"{resource_type}/{resource_id} has no version {version_id}")
        stored = _row_to_stored(row)
        if stored.deleted:
            raise OperationOutcomeError.of(
                Failure.GONE, f"Version {version_id} of {resource_type}/{resource_id} is a deletion"
            )
        return stored

    def history(self, resource_type: str, resource_id: str) -> list[StoredResource]:
        """Instance history, newest first (https://hl7.org/fhir/R4/http.html#history)."""
        check_type(resource_type)
        rows = self._conn.execute(
            select(resource_version)
            .where(
                self._visible(resource_version.c.tenant, resource_type),
                resource_version.c.resource_type == resource_type,
                resource_version.c.resource_id == resource_id,
            )
            .order_by(resource_version.c.version_id.desc())
        ).all()
        if not rows:
            raise not_found(f"{resource_type}/{resource_id} is not known")
        owner = rows[0].tenant
        return [_row_to_stored(row) for row in rows if row.tenant == owner]

    def changes(
        self, resource_type: str | None, *, since: str | None, count: int, offset: int
    ) -> tuple[list[StoredResource], bool]:
        """Type or system history, newest first, one page (https://hl7.org/fhir/R4/http.html#history);
        returns the versions and whether more follow. ``since`` is a FHIR instant."""
        stmt = select(resource_version).where(self._visible(resource_version.c.tenant, resource_type))
        if resource_type is not None:
            check_type(resource_type)
            stmt = stmt.where(resource_version.c.resource_type == resource_type)
        if since is not None:
            stmt = stmt.where(resource_version.c.last_updated >= since_stamp(since))
        rows = self._conn.execute(
            stmt.order_by(
                resource_version.c.last_updated.desc(),
                resource_version.c.resource_type,
                resource_version.c.resource_id,
                resource_version.c.version_id.desc(),
            )
            .limit(count + 1)
            .offset(offset)
        ).all()
        return [_row_to_stored(row) for row in rows[:count]], len(rows) > count

    # --- writes ----------------------------------------------------------------------------------

    def create(
        self,
        resource_type: str,
        body: dict[str, Any],
        *,
        resource_id: str | None = None,
        if_none_exist: str | None = None,
    ) -> WriteResult:
        """create and conditional create (https://hl7.org/fhir/R4/http.html#ccreate)."""
        check_type(resource_type)
        if if_none_exist:
            existing = self.match_one(resource_type, if_none_exist, "If-None-Exist")
            if existing is not None:
                return WriteResult(existing, created=False)
        new_id = resource_id or str(uuid.uuid4())
        check_id(new_id)
        tenant = self._new_tenant(resource_type, new_id)
        return WriteResult(self._insert(tenant, resource_type, new_id, body, "create"), created=True)

    def _new_tenant(self, resource_type: str, resource_id: str) -> str:
        """The tenant a new resource goes to. Ids stay unique across tenants, so callers reading several
        tenants name one resource by type and id; an id taken in an unseen tenant is a conflict."""
        if self._access is None:
            return self._tenant
        tenant = self._access.tenant_for_new(resource_type)
        taken = self._conn.execute(
            select(resource.c.tenant).where(
                resource.c.resource_type == resource_type, resource.c.resource_id == resource_id
            )
        ).first()
        if taken is not None:
            raise OperationOutcomeError.of(
                Failure.CONFLICT, f"The id {resource_id!r} is not available for a new {resource_type}"
            )
        return tenant

    def update(
        self, resource_type: str, resource_id: str, body: dict[str, Any], *, if_match: str | None = None
    ) -> WriteResult:
        """update, or create with a client id (https://hl7.org/fhir/R4/http.html#update), with
        version-aware concurrency (https://hl7.org/fhir/R4/http.html#concurrency)."""
        check_type(resource_type)
        check_id(resource_id)
        if body.get("id") is not None and body.get("id") != resource_id:
            raise invalid(
                f"The body's id {body.get('id')!r} does not match the URL's id {resource_id!r}", "id"
            )
        if body.get("id") is None:
            raise invalid(
                "An update body must carry the resource id (https://hl7.org/fhir/R4/http.html#update)", "id"
            )
        current = self._locked_version(resource_type, resource_id)
        expected = parse_etag(if_match) if if_match is not None else None
        if current is None:
            if expected is not None:
                raise OperationOutcomeError.of(
                    Failure.PRECONDITION_FAILED,
                    f"If-Match {if_match} given but {resource_type}/{resource_id} does not exist",
                )
            tenant = self._new_tenant(resource_type, resource_id)
            return WriteResult(self._insert(tenant, resource_type, resource_id, body, "update"), created=True)
        version, deleted, tenant = current
        if expected is not None and expected != version:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                f"{resource_type}/{resource_id} is at version {version}, not {expected} (If-Match)",
                code="conflict",
            )
        stored = self._write_version(tenant, resource_type, resource_id, body, version + 1, "update")
        return WriteResult(stored, created=deleted)

    def delete(
        self, resource_type: str, resource_id: str, *, if_match: str | None = None
    ) -> StoredResource | None:
        """delete (https://hl7.org/fhir/R4/http.html#delete); None when it was already deleted.
        ``if_match`` makes it version-aware (https://hl7.org/fhir/R4/http.html#concurrency)."""
        check_type(resource_type)
        current = self._locked_version(resource_type, resource_id)
        if current is None:
            raise not_found(f"{resource_type}/{resource_id} is not known")
        version, deleted, tenant = current
        if if_match is not None and parse_etag(if_match) != version:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                f"{resource_type}/{resource_id} is at version {version}, not {if_match} (If-Match)",
                code="conflict",
            )
        if deleted:
            return None
        stamp = self._repo.stamp()
        self._conn.execute(
            update(resource)
            .where(self._key(resource_type, resource_id, tenant))
            .values(version_id=version + 1, last_updated=stamp, deleted=True, content=None)
        )
        self._conn.execute(
            insert(resource_version).values(
                tenant=tenant,
                resource_type=resource_type,
                resource_id=resource_id,
                version_id=version + 1,
                last_updated=stamp,
                deleted=True,
                method="delete",
                raw=b"",
            )
        )
        self._clear_index(tenant, resource_type, resource_id)
        return StoredResource(resource_type, resource_id, version + 1, stamp, True, b"", tenant)

    def _locked_version(self, resource_type: str, resource_id: str) -> tuple[int, bool, str] | None:
        """The current version, deletion flag and tenant of a resource the caller may change (locked);
        ``None`` when it is unknown or unseen. A seen but unwritable one raises (403/405)."""
        row = self._conn.execute(
            select(resource.c.version_id, resource.c.deleted, resource.c.tenant)
            .where(self._key(resource_type, resource_id))
            .order_by(resource.c.tenant)
            .with_for_update()
        ).first()
        if row is None:
            return None
        if self._access is not None:
            self._access.check_write(resource_type, resource_id, row.tenant)
        return int(row.version_id), bool(row.deleted), str(row.tenant)

    def _insert(
        self, tenant: str, resource_type: str, resource_id: str, body: dict[str, Any], method: str
    ) -> StoredResource:
        stamp = self._repo.stamp()
        raw = _with_server_fields(body, resource_id, 1, stamp)
        self._conn.execute(
            insert(resource).values(
                tenant=tenant,
                resource_type=resource_type,
                resource_id=resource_id,
                version_id=1,
                last_updated=stamp,
                deleted=False,
                content=self._content(raw),
            )
        )
        return self._finish_write(tenant, resource_type, resource_id, 1, stamp, raw, method, fresh=True)

    def _write_version(
        self,
        tenant: str,
        resource_type: str,
        resource_id: str,
        body: dict[str, Any],
        version: int,
        method: str,
    ) -> StoredResource:
        stamp = self._repo.stamp()
        raw = _with_server_fields(body, resource_id, version, stamp)
        self._conn.execute(
            update(resource)
            .where(self._key(resource_type, resource_id, tenant))
            .values(version_id=version, last_updated=stamp, deleted=False, content=self._content(raw))
        )
        return self._finish_write(
            tenant, resource_type, resource_id, version, stamp, raw, method, fresh=False
        )

    def _content(self, raw: bytes) -> Any:
        # PostgreSQL keeps a JSONB copy for ad-hoc queries (numeric keeps decimals exact); SQLite needs none.
        return orjson.Fragment(raw) if self._repo.stores_content else None

    def _finish_write(
        self,
        tenant: str,
        resource_type: str,
        resource_id: str,
        version: int,
        stamp: str,
        raw: bytes,
        method: str,
        *,
        fresh: bool,
    ) -> StoredResource:
        self._conn.execute(
            insert(resource_version).values(
                tenant=tenant,
                resource_type=resource_type,
                resource_id=resource_id,
                version_id=version,
                last_updated=stamp,
                deleted=False,
                method=method,
                raw=raw,
            )
        )
        if not fresh:
            self._clear_index(tenant, resource_type, resource_id)
        self._write_index(tenant, resource_type, resource_id, loads(raw))
        return StoredResource(resource_type, resource_id, version, stamp, False, raw, tenant)

    def _clear_index(self, tenant: str, resource_type: str, resource_id: str) -> None:
        for table in INDEX_TABLES:
            self._conn.execute(
                delete(table).where(
                    table.c.tenant == tenant,
                    table.c.resource_type == resource_type,
                    table.c.resource_id == resource_id,
                )
            )

    def _write_index(self, tenant: str, resource_type: str, resource_id: str, body: dict[str, Any]) -> None:
        rows = self._repo.extractor.rows(resource_type, body)
        key = {"tenant": tenant, "resource_type": resource_type, "resource_id": resource_id}
        if rows.tokens:
            self._conn.execute(
                insert(idx_token),
                [{**key, "param": p, "system": t.system, "code": t.code} for p, t in rows.tokens],
            )
        if rows.strings:
            self._conn.execute(
                insert(idx_string),
                [{**key, "param": p, "value": s, "norm": normalize(s)} for p, s in rows.strings],
            )
        if rows.references:
            self._conn.execute(
                insert(idx_reference),
                [
                    {**key, "param": p, "target_type": r.target_type, "target_id": r.target_id, "url": r.url}
                    for p, r in rows.references
                ],
            )
        if rows.dates:
            self._conn.execute(
                insert(idx_date), [{**key, "param": p, "low": d.low, "high": d.high} for p, d in rows.dates]
            )

    # --- search ----------------------------------------------------------------------------------

    def match_one(self, resource_type: str, query_string: str, header: str) -> StoredResource | None:
        """The one resource a conditional header's query matches; 412 when several do."""
        from urllib.parse import parse_qsl

        pairs = parse_qsl(query_string.split("?", 1)[-1], keep_blank_values=True)
        if not pairs:
            raise invalid(f"{header} must be a search query such as identifier=system|value", header)
        query = parse_search(
            resource_type, pairs, self._repo.registry, strict=True, default_count=2, max_count=2
        )
        page = self.search(query)
        if len(page.matches) > 1:
            raise OperationOutcomeError.of(
                Failure.PRECONDITION_FAILED,
                f"{header} {query_string!r} matches more than one {resource_type}",
            )
        return page.matches[0] if page.matches else None

    def search(self, query: SearchQuery) -> SearchPage:
        """search (https://hl7.org/fhir/R4/search.html) with ``_count``/``_offset`` paging and includes."""
        check_type(query.resource_type)
        now = self._repo.now()
        where = [
            self._visible(resource.c.tenant, query.resource_type),
            resource.c.resource_type == query.resource_type,
            resource.c.deleted.is_(False),
        ]
        where += [criterion_clause(c, self._index_visible, query.resource_type, now) for c in query.criteria]
        total: int | None = None
        if query.total or query.summary_count:
            total = int(
                self._conn.execute(select(func.count()).select_from(resource).where(*where)).scalar_one()
            )
        if query.summary_count or query.count == 0:
            return SearchPage(query, total, (), (), has_next=False)
        order = []
        for key in query.sort:
            if key.param is None:
                column: Any = resource.c.resource_id if key.code == ID else resource.c.last_updated
                order.append(column.desc() if key.descending else column.asc())
            else:
                column = sort_value(key, query.resource_type)
                order.append((column.desc() if key.descending else column.asc()).nulls_last())
        order.append(resource.c.resource_id.asc())
        rows = self._conn.execute(
            self._current().where(*where).order_by(*order).limit(query.count + 1).offset(query.offset)
        ).all()
        matches = tuple(_row_to_stored(row) for row in rows[: query.count])
        included = self._includes(query, matches)
        return SearchPage(query, total, matches, included, has_next=len(rows) > query.count)

    def _includes(self, query: SearchQuery, matches: Sequence[StoredResource]) -> tuple[StoredResource, ...]:
        if not matches or not (query.includes or query.revincludes):
            return ()
        ids = [m.id for m in matches]
        wanted: set[tuple[str, str]] = set()
        for include in query.includes:
            if include.source_type not in ("*", query.resource_type):
                continue
            stmt = select(idx_reference.c.target_type, idx_reference.c.target_id).where(
                self._visible(idx_reference.c.tenant, query.resource_type),
                idx_reference.c.resource_type == query.resource_type,
                idx_reference.c.resource_id.in_(ids),
                idx_reference.c.target_id.is_not(None),
            )
            if include.param != "*":
                stmt = stmt.where(idx_reference.c.param == include.param)
            if include.target_type:
                stmt = stmt.where(idx_reference.c.target_type == include.target_type)
            wanted.update((row.target_type, row.target_id) for row in self._conn.execute(stmt))
        for include in query.revincludes:
            stmt = select(idx_reference.c.resource_type, idx_reference.c.resource_id).where(
                idx_reference.c.target_type == query.resource_type,
                idx_reference.c.target_id.in_(ids),
            )
            if include.source_type != "*":
                stmt = stmt.where(idx_reference.c.resource_type == include.source_type)
            if include.param != "*":
                stmt = stmt.where(idx_reference.c.param == include.param)
            wanted.update((row.resource_type, row.resource_id) for row in self._conn.execute(stmt))
        wanted -= {(m.resource_type, m.id) for m in matches}
        if not wanted:
            return ()
        # Every included resource passes the caller's tenant filter for its own type, in the SQL.
        visible = or_(
            *(
                and_(resource.c.resource_type == rt, self._visible(resource.c.tenant, rt))
                for rt in sorted({rt for rt, _ in wanted})
            )
        )
        rows = self._conn.execute(
            self._current()
            .where(
                visible,
                resource.c.deleted.is_(False),
                tuple_(resource.c.resource_type, resource.c.resource_id).in_(sorted(wanted)),
            )
            .order_by(resource.c.resource_type, resource.c.resource_id, resource.c.tenant)
        ).all()
        return tuple(_row_to_stored(row) for row in rows)

    def count(self) -> int:
        """How many resources (current versions, deleted or not) this tenant has."""
        return int(
            self._conn.execute(
                select(func.count()).select_from(resource).where(resource.c.tenant == self._tenant)
            ).scalar_one()
        )


def since_stamp(value: str) -> str:
    """The stored-timestamp form of a ``_since`` instant (https://hl7.org/fhir/R4/http.html#history)."""
    parsed = parse_date_range(value)
    if parsed is None:
        raise invalid(f"_since {value!r} is not a FHIR instant", "_since")
    return parsed.low


def parse_etag(value: str) -> int:
    """The version in an ETag or If-Match value (``W/"3"``, ``"3"`` or ``3``)."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise invalid(f'{value!r} is not a version ETag such as W/"3"', "If-Match")
    return int(text)


class Repository:
    """Opens :class:`Transaction`s on the engine; stateless apart from the engine and its configuration."""

    def __init__(
        self,
        engine: Engine,
        registry: SearchRegistry,
        *,
        now: Clock = utc_now,
        tenant: str = "",
        access: TenantAccess | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.extractor = Extractor(registry)
        self.now = now
        self.tenant = tenant
        self.access = access
        self.stores_content = is_postgresql(engine)

    def stamp(self) -> str:
        return timestamp(self.now())

    @contextmanager
    def writing(self) -> Iterator[Transaction]:
        """A read-write transaction: committed on normal exit, rolled back on any exception."""
        with _database_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield Transaction(conn, self)

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        """A read-only transaction (one consistent snapshot for a search and its includes)."""
        with _database_errors(), self.engine.connect() as conn, conn.begin():
            yield Transaction(conn, self)

    def for_tenant(self, tenant: str) -> Repository:
        """The same store seen by another tenant (shares the engine and the compiled index expressions)."""
        other = Repository(self.engine, self.registry, now=self.now, tenant=tenant)
        other.extractor = self.extractor
        return other

    def acting_for(self, access: TenantAccess) -> Repository:
        """The same store seen by one caller: reads filtered to ``access.readable`` tenants (in the SQL),
        new resources stored in ``access.tenant_for_new``, changes checked by ``access.check_write``."""
        other = Repository(self.engine, self.registry, now=self.now, tenant=self.tenant, access=access)
        other.extractor = self.extractor
        return other

    def create(self, resource_type: str, body: dict[str, Any], **kwargs: Any) -> WriteResult:
        with self.writing() as tx:
            return tx.create(resource_type, body, **kwargs)

    def update(
        self, resource_type: str, resource_id: str, body: dict[str, Any], **kwargs: Any
    ) -> WriteResult:
        with self.writing() as tx:
            return tx.update(resource_type, resource_id, body, **kwargs)

    def delete(self, resource_type: str, resource_id: str, **kwargs: Any) -> StoredResource | None:
        with self.writing() as tx:
            return tx.delete(resource_type, resource_id, **kwargs)

    def read(self, resource_type: str, resource_id: str) -> StoredResource:
        with self.reading() as tx:
            return tx.read(resource_type, resource_id)

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> StoredResource:
        with self.reading() as tx:
            return tx.vread(resource_type, resource_id, version_id)

    def history(self, resource_type: str, resource_id: str) -> list[StoredResource]:
        with self.reading() as tx:
            return tx.history(resource_type, resource_id)

    def changes(
        self, resource_type: str | None, *, since: str | None, count: int, offset: int
    ) -> tuple[list[StoredResource], bool]:
        with self.reading() as tx:
            return tx.changes(resource_type, since=since, count=count, offset=offset)

    def search(self, query: SearchQuery) -> SearchPage:
        with self.reading() as tx:
            return tx.search(query)

    def parse_search(
        self, resource_type: str, pairs: Sequence[tuple[str, str]], **kwargs: Any
    ) -> SearchQuery:
        return parse_search(resource_type, pairs, self.registry, **kwargs)


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise OperationOutcomeError.of(
            Failure.CONFLICT, "A concurrent write changed this resource first; retry", code="conflict"
        ) from exc
    except OperationalError as exc:
        raise OperationOutcomeError.of(
            Failure.UNAVAILABLE, "The database is unavailable or busy; retry"
        ) from exc
    except DBAPIError as exc:
        if getattr(exc, "connection_invalidated", False):
            raise OperationOutcomeError.of(
                Failure.UNAVAILABLE, "The database connection was lost; retry"
            ) from exc
        raise


__all__ = [
    "Include",
    "Repository",
    "SearchPage",
    "StoredResource",
    "TenantAccess",
    "Transaction",
    "WriteResult",
    "parse_etag",
]
