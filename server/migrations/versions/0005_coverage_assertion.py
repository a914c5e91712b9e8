"""Coverage assertions handed out by the CRD services, for DTR context and PAS linkage.

Revision ID: 0005_coverage_assertion
Revises: 0004_owner_index_by_id
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_coverage_assertion"
down_revision = "0004_owner_index_by_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_assertion",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("assertion_id", sa.String(64), nullable=False),
        sa.Column("created", sa.String(26), nullable=False),
        sa.Column("crd_version", sa.String(16), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(64), nullable=False),
        sa.Column("order_reference", sa.Text(), nullable=False),
        sa.Column("coverage_reference", sa.Text(), nullable=False),
        sa.Column("payer_id", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "assertion_id", name="pk_coverage_assertion"),
    )


def downgrade() -> None:
    op.drop_table("coverage_assertion")
