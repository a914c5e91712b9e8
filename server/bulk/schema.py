"""Tables of the bulk export (migration ``0014_bulk_export``): one row per ``$export`` job and one per
NDJSON output file. Jobs are claimed with a lease (``claim_token``, ``lease_until``) so two processes never
run the same job; files are deleted with their job once ``expires`` has passed."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import BYTEA

_BYTES = LargeBinary().with_variant(BYTEA(), "postgresql")


def bulk_tables(metadata: MetaData) -> tuple[Table, Table]:
    job = Table(
        "bulk_export_job",
        metadata,
        Column("job_id", String(64), nullable=False),
        Column("client_id", String(255), nullable=False),  # only this client polls and downloads
        Column("group_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),  # queued | running | completed | failed
        Column("request", Text, nullable=False),  # the kick-off URL (manifest ``request``)
        Column("base", Text, nullable=False),  # the FHIR base the output URLs are built on
        Column("parameters", Text, nullable=False),  # JSON: _type, _since, _outputFormat
        Column("created", String(35), nullable=False),
        Column("updated", String(35), nullable=False),
        Column("transaction_time", String(35), nullable=True),
        Column("lease_until", String(35), nullable=True),
        Column("claim_token", String(64), nullable=True),
        Column("progress", Text, nullable=True),
        Column("error", Text, nullable=True),
        Column("expires", String(35), nullable=True),  # when the manifest and files are deleted
        PrimaryKeyConstraint("job_id", name="pk_bulk_export_job"),
        Index("ix_bulk_export_job_status", "status", "lease_until"),
    )
    file = Table(
        "bulk_export_file",
        metadata,
        Column("file_id", String(64), nullable=False),  # random: the download URL names it
        Column("job_id", String(64), nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("count", Integer, nullable=False),
        Column("body", _BYTES, nullable=False),  # NDJSON, one resource per line
        PrimaryKeyConstraint("file_id", name="pk_bulk_export_file"),
        Index("ix_bulk_export_file_job", "job_id", "resource_type", "seq"),
    )
    return job, file
