"""Tables of the patient authorization (migration ``0015_patient_login``): patient logins, and the
authorization codes and refresh tokens issued to patient-facing apps. Codes and refresh tokens are
stored only as their SHA-256; times are integer epoch seconds (they compare the same on both engines)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)


def app_launch_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    patient_login = Table(
        "patient_login",
        metadata,
        Column("username", String(128), nullable=False),  # case-folded user name or e-mail address
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("patient_id", String(64), nullable=False),  # the FHIR Patient id in that tenant
        Column("display_name", String(128), nullable=False),
        Column("password_hash", String(255), nullable=False),  # argon2id, with its parameters
        Column("active", Boolean, nullable=False),
        Column("created", BigInteger, nullable=False),
        Column("failed_logins", Integer, nullable=False, server_default="0"),  # since the last success
        Column("locked_until", BigInteger, nullable=True),  # sign-in refused until then
        PrimaryKeyConstraint("username", name="pk_patient_login"),
    )
    code = Table(
        "app_launch_code",
        metadata,
        Column("code_hash", String(64), nullable=False),  # SHA-256 of the code, never the code
        Column("grant_id", String(64), nullable=False),  # shared with the refresh tokens issued from it
        Column("client_id", String(128), nullable=False),
        Column("redirect_uri", Text, nullable=False),
        Column("code_challenge", String(128), nullable=False),  # PKCE S256
        Column("scope", Text, nullable=False),
        Column("username", String(128), nullable=False),
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("patient_id", String(64), nullable=False),
        Column("nonce", Text, nullable=True),
        Column("issued", BigInteger, nullable=False),
        Column("expires", BigInteger, nullable=False),
        Column("used", BigInteger, nullable=True),  # set on the first redemption
        PrimaryKeyConstraint("code_hash", name="pk_app_launch_code"),
        Index("ix_app_launch_code_expires", "expires"),
    )
    refresh = Table(
        "app_launch_refresh_token",
        metadata,
        Column("token_hash", String(64), nullable=False),  # SHA-256 of the token, never the token
        Column("grant_id", String(64), nullable=False),
        Column("client_id", String(128), nullable=False),
        Column("scope", Text, nullable=False),
        Column("username", String(128), nullable=False),
        Column("tenant", String(64), nullable=False, server_default=""),
        Column("patient_id", String(64), nullable=False),
        Column("issued", BigInteger, nullable=False),
        Column("expires", BigInteger, nullable=False),
        Column("used", BigInteger, nullable=True),  # set when exchanged (rotation)
        Column("revoked", Boolean, nullable=False),
        PrimaryKeyConstraint("token_hash", name="pk_app_launch_refresh_token"),
        Index("ix_app_launch_refresh_token_grant", "grant_id"),
        Index("ix_app_launch_refresh_token_expires", "expires"),
    )
    return patient_login, code, refresh
