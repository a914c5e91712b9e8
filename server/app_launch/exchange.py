"""The ``authorization_code`` and ``refresh_token`` grants of ``POST /auth/token`` for patient apps
(SMART App Launch 2.1.0 "Obtain access token", "Refresh access token"; RFC 6749 §4.1.3, §6; RFC 7636).

Client authentication: a public app sends its ``client_id`` (PKCE proves it started the flow); a
confidential app authenticates with ``client_secret_basic`` or, when registered with keys, a
``private_key_jwt`` client assertion (checked as for Backend Services: audience the token URL, each
``jti`` once). The access token is a local token
(``issue_access_token``) carrying the patient's tenant, the granted scopes and the ``patient`` claim,
so ``LocalTokenVerifier`` makes a principal of kind ``patient`` from it. ``openid`` adds an OpenID
Connect ``id_token`` (signed with the server key, ``fhirUser`` = the Patient's URL);
``offline_access``/``online_access`` add a refresh token (rotated on every use; see ``grants``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

import jwt
from starlette.concurrency import run_in_threadpool

from server.app_launch.accounts import AccountStore, PatientAccount
from server.app_launch.apps import PatientApp, PatientApps
from server.app_launch.events import Attempt, AuditWriter, AuthorizationStep, authorization_event
from server.app_launch.grants import Grant, GrantStore
from server.security.assertions import ClientAuthenticationError, verify_client_assertion
from server.security.audit import AuditSource
from server.security.clients import RegisteredClient
from server.security.constants import (
    CLIENT_ASSERTION_TYPE_JWT_BEARER,
    GRANT_TYPE_AUTHORIZATION_CODE,
    GRANT_TYPE_REFRESH_TOKEN,
)
from server.security.jwks import JwksCache
from server.security.keys import KeyProvider
from server.security.replay import ReplayStore
from server.security.scopes import ScopeSet, ScopeSyntaxError, narrow, parse_scopes
from server.security.token_endpoint import OAuthErrorCode, TokenRequestError
from server.security.tokens import AccessTokenPolicy, issue_access_token

_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
REFRESH_SCOPES: Final = frozenset({"offline_access", "online_access"})
_BASIC: Final = 'Basic realm="priorgate"'


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def pkce_matches(verifier: str, challenge: str) -> bool:
    return bool(_VERIFIER.match(verifier)) and hmac.compare_digest(s256(verifier), challenge)


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: ``Basic base64(urlencode(client_id) ":" urlencode(secret))``."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


@dataclass(frozen=True)
class PatientTokenGrants:
    """Handles the two grant types for patient apps; every issue and refusal is audited."""

    apps: PatientApps
    grants: GrantStore
    accounts: AccountStore
    keys: KeyProvider
    policy: AccessTokenPolicy  # issuer = PriorGate's base URL, audience = its FHIR base URL
    now: Callable[[], datetime]
    audit: AuditWriter
    source: AuditSource
    refresh_lifetime: timedelta = timedelta(days=30)
    token_url: str = ""  # the audience of private_key_jwt assertions
    replay: ReplayStore | None = None  # private_key_jwt: each assertion jti once (None: not offered)
    jwks_cache: JwksCache | None = None
    grant_types: frozenset[str] = frozenset({GRANT_TYPE_AUTHORIZATION_CODE, GRANT_TYPE_REFRESH_TOKEN})

    async def exchange(
        self, form: Mapping[str, str], authorization: str | None, address: str | None = None
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        step: AuthorizationStep = "token" if grant_type == GRANT_TYPE_AUTHORIZATION_CODE else "refresh"
        attempt = Attempt(form.get("client_id") or "(not authenticated)", address=address)
        try:
            app = await self._client(form, authorization)
            attempt = Attempt(app.client_id, address=address)
            if grant_type == GRANT_TYPE_AUTHORIZATION_CODE:
                grant = await self._redeem_code(form, app)
                access_scope = grant.scope
            else:
                wanted = form.get("scope")  # RFC 6749 §6: may narrow the access token, not the grant
                grant = await self._refresh(form, app, wanted)
                access_scope = _narrowed(wanted, grant.scope).to_string() if wanted else grant.scope
            account = await run_in_threadpool(self.accounts.get, grant.username)
            if (
                account is None
                or not account.active
                or (account.tenant, account.patient_id) != (grant.tenant, grant.patient_id)
            ):
                raise TokenRequestError(
                    "invalid_grant", "the patient login of this grant is no longer active"
                )
            body = await self._issue(app, grant, account, access_scope, with_id_token=step == "token")
        except TokenRequestError as error:
            await self._audit(step, attempt, ok=False, description=f"{error.error}: {error.description}")
            raise
        done = Attempt(app.client_id, grant.username, grant.patient_id, address, body["scope"])
        await self._audit(step, done, ok=True)
        return body

    async def _client(self, form: Mapping[str, str], authorization: str | None) -> PatientApp:
        if form.get("client_secret") is not None:
            raise TokenRequestError(
                "invalid_client", "patient apps authenticate with client_secret_basic, not client_secret_post"
            )
        if form.get("client_assertion") is not None or form.get("client_assertion_type") is not None:
            return await self._asserted(form)
        if authorization:
            credentials = _basic_credentials(authorization)
            if credentials is None:
                raise TokenRequestError(
                    "invalid_client", "the Authorization header must be Basic credentials", challenge=_BASIC
                )
            client_id, secret = credentials
            app = self.apps.get(client_id)
            if app is None or not app.confidential or not app.secret_matches(secret):
                raise TokenRequestError("invalid_client", "client authentication failed", challenge=_BASIC)
            if form.get("client_id") not in (None, client_id):
                raise TokenRequestError("invalid_client", "client_id does not match the authenticated client")
            return app
        app = self.apps.get(form.get("client_id"))
        if app is None:
            raise TokenRequestError("invalid_client", "client_id does not name a registered app")
        if app.confidential:
            raise TokenRequestError("invalid_client", f"this app must authenticate ({app.auth_method})")
        return app

    async def _asserted(self, form: Mapping[str, str]) -> PatientApp:
        """RFC 7523 §2.2 client authentication with a ``private_key_jwt`` assertion."""
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE_JWT_BEARER or not assertion:
            raise TokenRequestError(
                "invalid_client", f"client_assertion_type must be {CLIENT_ASSERTION_TYPE_JWT_BEARER}"
            )
        if self.replay is None:
            raise TokenRequestError("invalid_client", "private_key_jwt is not offered to patient apps here")
        try:
            verified = await verify_client_assertion(
                assertion,
                audience=self.token_url,
                registry=_AppKeys(self.apps),
                replay=self.replay,
                now=self.now(),
                jwks_cache=self.jwks_cache,
            )
        except ClientAuthenticationError as exc:
            raise TokenRequestError("invalid_client", str(exc)) from None
        app = self.apps.get(verified.client.client_id)
        if app is None or form.get("client_id") not in (None, app.client_id):
            raise TokenRequestError("invalid_client", "client_id does not match the client_assertion")
        return app

    async def _redeem_code(self, form: Mapping[str, str], app: PatientApp) -> Grant:
        code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
        if not code or not redirect_uri or not verifier:
            raise TokenRequestError("invalid_request", "code, redirect_uri and code_verifier are required")
        now = int(self.now().timestamp())
        outcome, grant = await run_in_threadpool(self.grants.redeem_code, code, app.client_id, now)
        if outcome == "reused":
            raise TokenRequestError(
                "invalid_grant", "the authorization code was already used; tokens issued from it are revoked"
            )
        if grant is None:
            raise TokenRequestError("invalid_grant", "the authorization code is not valid")
        if grant.expires <= now:
            raise TokenRequestError("invalid_grant", "the authorization code has expired")
        if grant.redirect_uri != redirect_uri:
            raise TokenRequestError("invalid_grant", "redirect_uri differs from the authorization request")
        if not pkce_matches(verifier, grant.code_challenge):
            raise TokenRequestError("invalid_grant", "code_verifier does not match the code_challenge")
        return grant

    async def _refresh(self, form: Mapping[str, str], app: PatientApp, wanted: str | None) -> Grant:
        token = form.get("refresh_token")
        if not token:
            raise TokenRequestError("invalid_request", "refresh_token is required")
        now = int(self.now().timestamp())

        def check(grant: Grant) -> None:  # a bad scope leaves the refresh token usable
            if wanted:
                _narrowed(wanted, grant.scope)

        outcome, grant = await run_in_threadpool(
            self.grants.use_refresh_token, token, app.client_id, now, check
        )
        if outcome == "reused":
            raise TokenRequestError(
                "invalid_grant", "the refresh token was already used; the authorization is revoked"
            )
        if grant is None:
            raise TokenRequestError("invalid_grant", "the refresh token is not valid")
        return grant

    async def _issue(
        self,
        app: PatientApp,
        grant: Grant,
        account: PatientAccount,
        access_scope: str,
        *,
        with_id_token: bool,
    ) -> dict[str, Any]:
        """The token response: an access token for ``access_scope``; an id_token when asked for; a new
        refresh token (for the grant's whole scope, RFC 6749 §6) when the grant allows refreshing."""
        now = self.now()
        scopes = parse_scopes(access_scope)
        granted = parse_scopes(grant.scope)
        client = RegisteredClient(
            client_id=app.client_id,
            name=app.name,
            tenants=frozenset({account.tenant}),
            scopes=app.scopes,
        )
        issued = issue_access_token(
            client,
            scopes,
            keys=self.keys,
            policy=self.policy,
            now=now,
            patient=account.patient_id,
            subject=account.username,
        )
        body: dict[str, Any] = {**issued.to_json(), "patient": account.patient_id}
        if with_id_token and "openid" in scopes.other:
            body["id_token"] = self._id_token(app, grant, account, now)
        if REFRESH_SCOPES & set(granted.other):
            expires = int((now + self.refresh_lifetime).timestamp())
            rotated = Grant(
                grant.grant_id,
                app.client_id,
                grant.scope,
                grant.username,
                grant.tenant,
                grant.patient_id,
                expires,
            )
            body["refresh_token"] = await run_in_threadpool(
                self.grants.issue_refresh_token, rotated, int(now.timestamp())
            )
        return body

    def _id_token(self, app: PatientApp, grant: Grant, account: PatientAccount, now: datetime) -> str:
        """OpenID Connect Core §2 ID Token; SMART ``fhirUser`` = the URL of the patient's Patient resource."""
        key = self.keys.signing_key()
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.policy.issuer,
            "sub": account.username,
            "aud": app.client_id,
            "iat": issued,
            "exp": issued + int(self.policy.lifetime.total_seconds()),
            "jti": uuid.uuid4().hex,
            "fhirUser": f"{self.policy.audience.rstrip('/')}/{account.patient_reference}",
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": "JWT"}
        )

    async def _audit(
        self, step: AuthorizationStep, attempt: Attempt, *, ok: bool, description: str | None = None
    ) -> None:
        event = authorization_event(
            step, attempt, ok=ok, source=self.source, recorded=self.now(), description=description
        )
        await self.audit(event)


@dataclass(frozen=True)
class _AppKeys:
    """The asymmetric patient apps as a ``ClientRegistry`` (their key registrations)."""

    apps: PatientApps

    async def get(self, client_id: str) -> RegisteredClient | None:
        return await self.apps.keys_of(client_id)


def _narrowed(wanted: str, original: str) -> ScopeSet:
    """A refresh request's ``scope``: it may only narrow what was granted (RFC 6749 §6)."""
    code: OAuthErrorCode = "invalid_scope"
    try:
        requested = parse_scopes(wanted)
    except ScopeSyntaxError as exc:
        raise TokenRequestError(code, str(exc)) from None
    granted = parse_scopes(original)
    kept = narrow(requested, granted)
    if len(kept.resource_scopes) != len(requested.resource_scopes) or len(kept.other) != len(requested.other):
        raise TokenRequestError(code, "a refresh may not ask for scopes beyond the original grant")
    if not kept.resource_scopes:
        raise TokenRequestError(code, "at least one patient/ scope is required")
    return kept
