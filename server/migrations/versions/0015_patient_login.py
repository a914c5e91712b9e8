"""Patient logins, and the authorization codes and refresh tokens of SMART App Launch for patients.

Revision ID: 0015_patient_login
Revises: 0014_bulk_export
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_patient_login"
down_revision = "0014_bulk_export"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_login",
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("username", name="pk_patient_login"),
    )
    op.create_table(
        "app_launch_code",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_app_launch_code"),
    )
    op.create_index("ix_app_launch_code_expires", "app_launch_code", ["expires"])
    op.create_table(
        "app_launch_refresh_token",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_app_launch_refresh_token"),
    )
    op.create_index("ix_app_launch_refresh_token_grant", "app_launch_refresh_token", ["grant_id"])
    op.create_index("ix_app_launch_refresh_token_expires", "app_launch_refresh_token", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_app_launch_refresh_token_expires", table_name="app_launch_refresh_token")
    op.drop_index("ix_app_launch_refresh_token_grant", table_name="app_launch_refresh_token")
    op.drop_table("app_launch_refresh_token")
    op.drop_index("ix_app_launch_code_expires", table_name="app_launch_code")
    op.drop_table("app_launch_code")
    op.drop_table("patient_login")
