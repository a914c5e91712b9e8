"""The X12 exchange log of PAS requests routed to legacy payers.

Revision ID: 0012_x12_exchange
Revises: 0011_ops
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_x12_exchange"
down_revision = "0011_ops"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_x12_exchange",
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("exchange_id", sa.String(64), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("claim_identifier", sa.Text(), nullable=False),
        sa.Column("request_278", sa.Text(), nullable=False),
        sa.Column("response_278", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.String(35), nullable=False),
        sa.Column("received_at", sa.String(35), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "exchange_id", name="pk_pas_x12_exchange"),
    )
    op.create_index("ix_pas_x12_exchange_submission", "pas_x12_exchange", ["tenant", "submission_id"])


def downgrade() -> None:
    op.drop_index("ix_pas_x12_exchange_submission", table_name="pas_x12_exchange")
    op.drop_table("pas_x12_exchange")
