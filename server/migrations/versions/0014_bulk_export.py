"""Bulk export jobs and their NDJSON output files (Group/$export, FHIR Bulk Data 2.0).

Revision ID: 0014_bulk_export
Revises: 0013_pas_submission_trace
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA

revision = "0014_bulk_export"
down_revision = "0013_pas_submission_trace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_export_job",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("created", sa.String(35), nullable=False),
        sa.Column("updated", sa.String(35), nullable=False),
        sa.Column("transaction_time", sa.String(35), nullable=True),
        sa.Column("lease_until", sa.String(35), nullable=True),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("expires", sa.String(35), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_bulk_export_job"),
    )
    op.create_index("ix_bulk_export_job_status", "bulk_export_job", ["status", "lease_until"])
    op.create_table(
        "bulk_export_file",
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary().with_variant(BYTEA(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name="pk_bulk_export_file"),
    )
    op.create_index("ix_bulk_export_file_job", "bulk_export_file", ["job_id", "resource_type", "seq"])


def downgrade() -> None:
    op.drop_index("ix_bulk_export_file_job", table_name="bulk_export_file")
    op.drop_table("bulk_export_file")
    op.drop_index("ix_bulk_export_job_status", table_name="bulk_export_job")
    op.drop_table("bulk_export_job")
