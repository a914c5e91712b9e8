"""Export jobs and their files in the database, shared by every PriorGate process.

A job is claimable when ``queued``, or ``running`` with its lease over (the process running it died).
Claiming sets a fresh ``claim_token`` and ``lease_until`` in one transaction (PostgreSQL: ``FOR UPDATE
SKIP LOCKED``; SQLite: ``BEGIN IMMEDIATE``), and drops the files a previous claim left. Every later write
of the claimant (files, progress, completion) names its token and renews the lease: when the job was
cancelled (deleted) or claimed by another process meanwhile, the write changes nothing and the claimant
stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update

from server import fhir_json
from server.search.values import timestamp
from server.storage.engine import WRITE_OPTION, is_postgresql
from server.storage.schema import bulk_export_file, bulk_export_job

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"


@dataclass(frozen=True)
class Parameters:
    """The kick-off parameters a job runs with."""

    types: tuple[str, ...]  # empty: every exported type
    since: str | None  # the _since instant as given
    output_format: str

    def to_json(self) -> bytes:
        return fhir_json.dumps({"types": list(self.types), "since": self.since, "format": self.output_format})

    @classmethod
    def from_json(cls, raw: str) -> Parameters:
        value = fhir_json.loads(raw.encode())
        assert isinstance(value, dict)
        return cls(tuple(value["types"]), value["since"], str(value["format"]))


@dataclass(frozen=True)
class Job:
    job_id: str
    client_id: str
    group_id: str
    status: str
    request: str
    base: str
    parameters: Parameters
    created: str
    transaction_time: str | None
    progress: str | None
    error: str | None
    expires: str | None


@dataclass(frozen=True)
class OutputFile:
    file_id: str
    job_id: str
    resource_type: str
    seq: int
    count: int


@dataclass(frozen=True)
class Claim:
    job: Job
    token: str


@dataclass(frozen=True)
class NewFile:
    resource_type: str
    seq: int
    count: int
    body: bytes


def _job(row: Any) -> Job:
    return Job(
        job_id=row.job_id,
        client_id=row.client_id,
        group_id=row.group_id,
        status=row.status,
        request=row.request,
        base=row.base,
        parameters=Parameters.from_json(row.parameters),
        created=row.created,
        transaction_time=row.transaction_time,
        progress=row.progress,
        error=row.error,
        expires=row.expires,
    )


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _writing(self) -> Connection:
        return self._engine.connect().execution_options(**{WRITE_OPTION: True})

    # --- the API side ------------------------------------------------------------------------------

    def create(
        self, *, client_id: str, group_id: str, request: str, base: str, parameters: Parameters, now: datetime
    ) -> Job:
        job_id = uuid.uuid4().hex
        stamp = timestamp(now)
        with self._writing() as connection, connection.begin():
            connection.execute(
                insert(bulk_export_job).values(
                    job_id=job_id,
                    client_id=client_id,
                    group_id=group_id,
                    status=QUEUED,
                    request=request,
                    base=base,
                    parameters=parameters.to_json().decode(),
                    created=stamp,
                    updated=stamp,
                )
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(bulk_export_job).where(bulk_export_job.c.job_id == job_id)
            ).first()
        return None if row is None else _job(row)

    def files(self, job_id: str) -> list[OutputFile]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    bulk_export_file.c.file_id,
                    bulk_export_file.c.job_id,
                    bulk_export_file.c.resource_type,
                    bulk_export_file.c.seq,
                    bulk_export_file.c.count,
                )
                .where(bulk_export_file.c.job_id == job_id)
                .order_by(bulk_export_file.c.resource_type, bulk_export_file.c.seq)
            ).all()
        return [
            OutputFile(r.file_id, r.job_id, r.resource_type, r.seq, int(r._mapping["count"])) for r in rows
        ]

    def file(self, file_id: str) -> tuple[OutputFile, bytes] | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(bulk_export_file).where(bulk_export_file.c.file_id == file_id)
            ).first()
        if row is None:
            return None
        count = int(row._mapping["count"])
        return OutputFile(row.file_id, row.job_id, row.resource_type, row.seq, count), bytes(row.body)

    def delete(self, job_id: str) -> bool:
        """Cancel a running job or delete a finished one with its files; False when unknown."""
        with self._writing() as connection, connection.begin():
            connection.execute(delete(bulk_export_file).where(bulk_export_file.c.job_id == job_id))
            gone = connection.execute(delete(bulk_export_job).where(bulk_export_job.c.job_id == job_id))
        return bool(gone.rowcount)

    def delete_expired(self, now: datetime) -> int:
        """Delete finished jobs (and their files) whose lifetime is over; returns how many jobs."""
        stamp = timestamp(now)
        expired = select(bulk_export_job.c.job_id).where(
            bulk_export_job.c.expires.is_not(None), bulk_export_job.c.expires <= stamp
        )
        with self._engine.connect() as connection:
            if connection.execute(expired.limit(1)).first() is None:
                return 0
        with self._writing() as connection, connection.begin():
            ids = [row.job_id for row in connection.execute(expired)]
            if ids:
                connection.execute(delete(bulk_export_file).where(bulk_export_file.c.job_id.in_(ids)))
                connection.execute(delete(bulk_export_job).where(bulk_export_job.c.job_id.in_(ids)))
        return len(ids)

    def count(self) -> tuple[int, int]:
        """How many jobs and files are stored (for tests and metrics)."""
        with self._engine.connect() as connection:
            jobs = connection.execute(select(func.count()).select_from(bulk_export_job)).scalar_one()
            files = connection.execute(select(func.count()).select_from(bulk_export_file)).scalar_one()
        return int(jobs), int(files)

    # --- the worker side ---------------------------------------------------------------------------

    def claim(self, now: datetime, lease: timedelta) -> Claim | None:
        """Claim the oldest waiting job (or one whose claimant's lease ran out) for ``lease``."""
        stamp = timestamp(now)
        query = (
            select(bulk_export_job)
            .where(
                or_(
                    bulk_export_job.c.status == QUEUED,
                    (bulk_export_job.c.status == RUNNING) & (bulk_export_job.c.lease_until <= stamp),
                )
            )
            .order_by(bulk_export_job.c.created, bulk_export_job.c.job_id)
            .limit(1)
        )
        with self._engine.connect() as connection:  # an idle queue costs no write transaction
            if connection.execute(query).first() is None:
                return None
        if is_postgresql(self._engine):
            query = query.with_for_update(skip_locked=True)
        token = uuid.uuid4().hex
        with self._writing() as connection, connection.begin():
            row = connection.execute(query).first()
            if row is None:
                return None
            connection.execute(delete(bulk_export_file).where(bulk_export_file.c.job_id == row.job_id))
            connection.execute(
                update(bulk_export_job)
                .where(bulk_export_job.c.job_id == row.job_id)
                .values(
                    status=RUNNING,
                    claim_token=token,
                    lease_until=timestamp(now + lease),
                    transaction_time=stamp,
                    progress="started",
                    updated=stamp,
                )
            )
        job = self.get(row.job_id)
        return None if job is None else Claim(job, token)

    def _mine(self, claim: Claim) -> Any:
        return (bulk_export_job.c.job_id == claim.job.job_id) & (bulk_export_job.c.claim_token == claim.token)

    def progress(
        self, claim: Claim, now: datetime, lease: timedelta, progress: str, files: Sequence[NewFile] = ()
    ) -> bool:
        """Store ``files``, note progress and renew the lease; False when the job is no longer ours."""
        with self._writing() as connection, connection.begin():
            renewed = connection.execute(
                update(bulk_export_job)
                .where(self._mine(claim), bulk_export_job.c.status == RUNNING)
                .values(lease_until=timestamp(now + lease), progress=progress, updated=timestamp(now))
            )
            if not renewed.rowcount:
                return False
            if files:
                connection.execute(
                    insert(bulk_export_file),
                    [
                        {
                            "file_id": uuid.uuid4().hex,
                            "job_id": claim.job.job_id,
                            "resource_type": f.resource_type,
                            "seq": f.seq,
                            "count": f.count,
                            "body": f.body,
                        }
                        for f in files
                    ],
                )
        return True

    def finish(self, claim: Claim, now: datetime, expires: datetime, error: str | None = None) -> bool:
        """Mark the job completed (or failed with ``error``); its files live until ``expires``."""
        with self._writing() as connection, connection.begin():
            done = connection.execute(
                update(bulk_export_job)
                .where(self._mine(claim), bulk_export_job.c.status == RUNNING)
                .values(
                    status=FAILED if error else COMPLETED,
                    error=error,
                    progress="failed" if error else "completed",
                    expires=timestamp(expires),
                    lease_until=None,
                    updated=timestamp(now),
                )
            )
        return bool(done.rowcount)
