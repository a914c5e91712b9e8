"""Authorization codes and refresh tokens in the database, shared by every worker.

Only SHA-256 digests are stored. A code is redeemed at most once: the first redemption marks it used
(``UPDATE ... WHERE used IS NULL``, so two concurrent redemptions cannot both succeed); a second one
finds it used and revokes every refresh token of its grant (RFC 6749 §4.1.2). Refresh tokens rotate:
each use marks the token used and issues a new one for the same grant; presenting a used token again
revokes the whole grant (RFC 9700 §4.14.2, refresh token rotation with reuse detection). Access tokens
are short-lived JWTs and are not revoked: they expire after ``PRIORGATE_ACCESS_TOKEN_LIFETIME``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, delete, select, update

from server.ops.auth import new_token, token_hash
from server.storage.engine import WRITE_OPTION
from server.storage.schema import app_launch_code, app_launch_refresh_token

# A used code is kept this long past its expiry, so a late replay is still recognised and revokes.
USED_CODE_MEMORY = 3600

Redemption = Literal["ok", "unknown", "reused"]


@dataclass(frozen=True)
class Grant:
    """What a patient approved for an app: the content of a code, and of each refresh token from it."""

    grant_id: str
    client_id: str
    scope: str
    username: str
    tenant: str
    patient_id: str
    expires: int  # of the code or token carrying it (epoch seconds)
    redirect_uri: str = ""  # codes only
    code_challenge: str = ""  # codes only
    nonce: str | None = None  # codes only


@dataclass(frozen=True)
class GrantStore:
    engine: Engine

    def _writing(self) -> Connection:
        return self.engine.connect().execution_options(**{WRITE_OPTION: True})

    # -- authorization codes ------------------------------------------------------------------------------

    def issue_code(self, grant: Grant, now: int) -> str:
        code = new_token()
        with self._writing() as connection, connection.begin():
            connection.execute(
                delete(app_launch_code).where(app_launch_code.c.expires < now - USED_CODE_MEMORY)
            )
            connection.execute(
                app_launch_code.insert().values(
                    code_hash=token_hash(code),
                    grant_id=grant.grant_id,
                    client_id=grant.client_id,
                    redirect_uri=grant.redirect_uri,
                    code_challenge=grant.code_challenge,
                    scope=grant.scope,
                    username=grant.username,
                    tenant=grant.tenant,
                    patient_id=grant.patient_id,
                    nonce=grant.nonce,
                    issued=now,
                    expires=grant.expires,
                )
            )
        return code

    def redeem_code(self, code: str, client_id: str, now: int) -> tuple[Redemption, Grant | None]:
        """Mark the code used and return its grant; a code already used revokes its grant's tokens.
        A code of another client is ``unknown`` and stays unused."""
        key = app_launch_code.c.code_hash == token_hash(code)
        with self._writing() as connection, connection.begin():
            row = connection.execute(select(app_launch_code).where(key)).mappings().first()
            if row is None or row["client_id"] != client_id:
                return "unknown", None
            claimed = connection.execute(
                update(app_launch_code).where(key, app_launch_code.c.used.is_(None)).values(used=now)
            )
            if row["used"] is not None or claimed.rowcount != 1:
                self._revoke(connection, row["grant_id"])
                return "reused", None
        return "ok", Grant(
            row["grant_id"],
            row["client_id"],
            row["scope"],
            row["username"],
            row["tenant"],
            row["patient_id"],
            int(row["expires"]),
            row["redirect_uri"],
            row["code_challenge"],
            row["nonce"],
        )

    # -- refresh tokens -----------------------------------------------------------------------------------

    def issue_refresh_token(self, grant: Grant, now: int) -> str:
        token = new_token()
        with self._writing() as connection, connection.begin():
            connection.execute(
                delete(app_launch_refresh_token).where(app_launch_refresh_token.c.expires < now)
            )
            connection.execute(
                app_launch_refresh_token.insert().values(
                    token_hash=token_hash(token),
                    grant_id=grant.grant_id,
                    client_id=grant.client_id,
                    scope=grant.scope,
                    username=grant.username,
                    tenant=grant.tenant,
                    patient_id=grant.patient_id,
                    issued=now,
                    expires=grant.expires,
                    revoked=False,
                )
            )
        return token

    def use_refresh_token(
        self, token: str, client_id: str, now: int, check: Callable[[Grant], None] | None = None
    ) -> tuple[Redemption, Grant | None]:
        """Mark the refresh token used (rotation) and return its grant. Unknown, expired, revoked or
        another client's: ``unknown``; already used: ``reused``, and the whole grant is revoked.
        ``check`` may refuse the request (by raising) before the token is used up."""
        table = app_launch_refresh_token
        key = table.c.token_hash == token_hash(token)
        with self._writing() as connection, connection.begin():
            row = connection.execute(select(table).where(key)).mappings().first()
            if row is None or row["client_id"] != client_id or row["revoked"] or int(row["expires"]) <= now:
                return "unknown", None
            grant = Grant(
                row["grant_id"],
                row["client_id"],
                row["scope"],
                row["username"],
                row["tenant"],
                row["patient_id"],
                int(row["expires"]),
            )
            if row["used"] is None and check is not None:
                check(grant)
            claimed = connection.execute(update(table).where(key, table.c.used.is_(None)).values(used=now))
            if row["used"] is not None or claimed.rowcount != 1:
                self._revoke(connection, row["grant_id"])
                return "reused", None
        return "ok", grant

    def _revoke(self, connection: Connection, grant_id: str) -> None:
        table = app_launch_refresh_token
        connection.execute(update(table).where(table.c.grant_id == grant_id).values(revoked=True))
