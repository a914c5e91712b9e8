"""Resources, versions and search index tables.

Revision ID: 0001_resources
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

revision = "0001_resources"
down_revision = None
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_BYTES = sa.LargeBinary().with_variant(BYTEA(), "postgresql")


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "resource",
        *_key(),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(26), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("tenant", "resource_type", "resource_id", name="pk_resource"),
    )
    op.create_index("ix_resource_type_updated", "resource", ["tenant", "resource_type", "last_updated"])
    op.create_table(
        "resource_version",
        *_key(),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(26), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("raw", _BYTES, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "resource_type", "resource_id", "version_id", name="pk_resource_version"
        ),
    )
    op.create_table(
        "idx_token",
        *_key(),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.Text, nullable=True),
        sa.Column("code", sa.Text, nullable=False),
    )
    op.create_index("ix_idx_token_value", "idx_token", ["tenant", "resource_type", "param", "code"])
    op.create_table(
        "idx_string",
        *_key(),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("norm", sa.Text, nullable=False),
    )
    op.create_index("ix_idx_string_value", "idx_string", ["tenant", "resource_type", "param", "norm"])
    op.create_table(
        "idx_reference",
        *_key(),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(64), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_idx_reference_target", "idx_reference", ["tenant", "resource_type", "param", "target_id"]
    )
    op.create_table(
        "idx_date",
        *_key(),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("low", sa.String(26), nullable=False),
        sa.Column("high", sa.String(26), nullable=False),
    )
    op.create_index("ix_idx_date_value", "idx_date", ["tenant", "resource_type", "param", "low", "high"])
    for table in ("idx_token", "idx_string", "idx_reference", "idx_date"):
        op.create_index(f"ix_{table}_owner", table, ["tenant", "resource_type", "resource_id"])


def downgrade() -> None:
    for table in ("idx_date", "idx_reference", "idx_string", "idx_token", "resource_version", "resource"):
        op.drop_table(table)
