"""CDS Hooks feedback and the shared jti replay table.

Revision ID: 0007_cds_feedback_and_jti
Revises: 0006_pas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_cds_feedback_and_jti"
down_revision = "0006_pas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("card", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("received", sa.String(35), nullable=False),
        sa.Column("item", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    op.create_index("ix_cds_feedback_service", "cds_feedback", ["tenant", "service_id", "received"])
    op.create_table(
        "security_jti",
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "jti", name="pk_security_jti"),
    )
    op.create_index("ix_security_jti_expires_at", "security_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_security_jti_expires_at", table_name="security_jti")
    op.drop_table("security_jti")
    op.drop_index("ix_cds_feedback_service", table_name="cds_feedback")
    op.drop_table("cds_feedback")
