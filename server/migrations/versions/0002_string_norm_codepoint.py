"""Normalised search strings compare by code point on PostgreSQL (COLLATE "C"): prefix search uses the index.

Revision ID: 0002_string_norm_codepoint
Revises: 0001_resources
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_string_norm_codepoint"
down_revision = "0001_resources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite's default BINARY collation already compares by code point.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("idx_string", "norm", type_=sa.Text(collation="C"), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("idx_string", "norm", type_=sa.Text(), existing_nullable=False)
