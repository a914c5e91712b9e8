"""``GET``/``POST /auth/authorize``: the patient's sign-in and approval page (SMART App Launch 2.1.0
"Obtain authorization code"; RFC 6749 §4.1.1-§4.1.2).

``GET`` validates the request and shows a server-rendered page (the operations pages' look, no
JavaScript) with the requested permissions and a sign-in form; the form carries the request's
parameters and a CSRF token that must equal the one in a cookie set with the page (path
``/auth/authorize``, HttpOnly, SameSite=Lax), and a cross-origin ``Origin`` is refused. ``POST``
validates the request again, then: "Deny" redirects with ``error=access_denied``; a failed sign-in
shows the form again (401) saying only "Unknown user name or wrong password"; a good one issues a
single-use code bound to the app, redirect URI, PKCE challenge, scopes and patient, and redirects with
``code`` and ``state``. Errors before the redirect URI is known to be the app's are a 400 page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl
from uuid import uuid4

from fastapi import APIRouter, Request
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from server.app_launch.accounts import PatientLogins
from server.app_launch.apps import PatientApps
from server.app_launch.authorization import (
    AUTHORIZE_PARAMETERS,
    AuthorizationRequest,
    RedirectedError,
    UnsafeAuthorizationRequest,
    redirect_to,
    validate_authorization_request,
)
from server.app_launch.events import Attempt, AuditWriter, AuthorizationStep, authorization_event
from server.app_launch.grants import Grant, GrantStore
from server.ops.auth import new_token, same_origin, same_token
from server.security.audit import AuditSource
from server.security.constants import AUTHORIZE_PATH
from server.security.scopes import Scope

CSRF_COOKIE: Final = "priorgate_authorize"
MAX_FORM_BYTES: Final = 16 * 1024
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
_LETTERS: Final = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_OTHER: Final = {
    "openid": "Know who you are (your user name)",
    "fhirUser": "Know which patient record is yours",
    "launch/patient": "Open your patient record",
    "offline_access": "Keep access while you are away, until you sign out of the app",
    "online_access": "Keep access while you use the app",
}
TEMPLATES: Final = Environment(
    loader=ChoiceLoader(
        [PackageLoader("server.app_launch", "templates"), PackageLoader("server.ops", "templates")]
    ),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def describe(scope: Scope) -> str:
    what = "all your records" if scope.resource_type == "*" else f"your {scope.resource_type} records"
    verbs = [_LETTERS[i] for i in "cruds" if i in scope.interactions]
    spoken = verbs[0] if len(verbs) == 1 else f"{', '.join(verbs[:-1])} and {verbs[-1]}"
    return f"{spoken} {what}".capitalize()


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    # No ``form-action``: browsers apply it to the redirect to the app after the form is sent.
    return HTMLResponse(
        TEMPLATES.get_template(name).render(**context),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": _CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",  # no framing (clickjacking), for browsers without frame-ancestors
            "Referrer-Policy": "same-origin",  # no-referrer would make the form's Origin "null"
        },
    )


def _refusal(message: str, status: int = 400) -> HTMLResponse:
    return _page("authorize_error.html", status, title="This sign-in request cannot be used", message=message)


@dataclass(frozen=True)
class AuthorizePages:
    """What the authorize endpoint needs; ``audience`` is the FHIR base URL a request's ``aud`` must be."""

    apps: PatientApps
    logins: PatientLogins
    grants: GrantStore
    audience: str
    now: Callable[[], datetime]
    audit: AuditWriter
    source: AuditSource
    code_lifetime: timedelta = timedelta(seconds=60)
    secure_cookies: bool = False
    public_origin: str | None = None  # scheme://host[:port] of PRIORGATE_BASE_URL, accepted as Origin

    async def record(
        self, step: AuthorizationStep, attempt: Attempt, ok: bool, why: str | None = None
    ) -> None:
        await self.audit(
            authorization_event(
                step, attempt, ok=ok, source=self.source, recorded=self.now(), description=why
            )
        )

    def form_page(self, request: AuthorizationRequest, status: int = 200, **extra: Any) -> Response:
        token = new_token()
        permissions = [describe(s) for s in request.scopes.resource_scopes]
        permissions += [_OTHER[o] for o in request.scopes.other if o in _OTHER]
        response = _page(
            "authorize.html",
            status,
            title=f"Sign in: {request.app.name}",
            app_name=request.app.name,
            action=AUTHORIZE_PATH,
            csrf=token,
            parameters=request.parameters,
            permissions=permissions,
            **extra,
        )
        response.set_cookie(
            CSRF_COOKIE,
            token,
            max_age=1800,
            path=AUTHORIZE_PATH,
            httponly=True,
            samesite="lax",
            secure=self.secure_cookies,
        )
        return response

    def same_origin(self, request: Request) -> bool:
        own = f"{request.url.scheme}://{request.url.netloc}"
        return same_origin(request.headers.get("origin"), own, self.public_origin)


def _validated(pages: AuthorizePages, pairs: Sequence[tuple[str, str]]) -> AuthorizationRequest | Response:
    try:
        return validate_authorization_request(pairs, apps=pages.apps, audience=pages.audience)
    except UnsafeAuthorizationRequest as exc:
        return _refusal(str(exc))
    except RedirectedError as error:
        return RedirectResponse(error.location, status_code=303)


def build_authorize_router(pages: AuthorizePages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(AUTHORIZE_PATH)
    async def authorize_page(request: Request) -> Response:
        found = _validated(pages, parse_qsl(request.url.query, keep_blank_values=True))
        return found if isinstance(found, Response) else pages.form_page(found)

    @router.post(AUTHORIZE_PATH)
    async def authorize(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _refusal("The sign-in form is too large.", 413)
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        form = dict(pairs)
        if not pages.same_origin(request) or not same_token(
            request.cookies.get(CSRF_COOKIE), form.get("csrf")
        ):
            return _refusal("The sign-in form expired or did not come from this page; start again.", 403)
        found = _validated(pages, [(k, v) for k, v in pairs if k in AUTHORIZE_PARAMETERS])
        if isinstance(found, Response):
            return found
        address = request.client.host if request.client is not None else None
        username = form.get("username", "").strip()
        if form.get("decision") != "allow":
            await pages.record(
                "code",
                Attempt(found.app.client_id, username or None, address=address),
                False,
                "access_denied",
            )
            return RedirectResponse(
                found.error("access_denied", "the patient denied access").location, status_code=303
            )
        account = await run_in_threadpool(pages.logins.login, username, form.get("password", ""))
        if account is None:
            await pages.record(
                "login", Attempt(found.app.client_id, username or None, address=address), False
            )
            return pages.form_page(
                found, 401, error="Unknown user name or wrong password.", username=username
            )
        attempt = Attempt(
            found.app.client_id, account.username, account.patient_id, address, found.scopes.to_string()
        )
        await pages.record("login", attempt, True)
        now = pages.now()
        grant = Grant(
            grant_id=uuid4().hex,
            client_id=found.app.client_id,
            scope=found.scopes.to_string(),
            username=account.username,
            tenant=account.tenant,
            patient_id=account.patient_id,
            expires=int((now + pages.code_lifetime).timestamp()),
            redirect_uri=found.redirect_uri,
            code_challenge=found.code_challenge,
            nonce=found.nonce,
        )
        code = await run_in_threadpool(pages.grants.issue_code, grant, int(now.timestamp()))
        await pages.record("code", attempt, True)
        response = RedirectResponse(
            redirect_to(found.redirect_uri, {"code": code, "state": found.state}), 303
        )
        response.delete_cookie(CSRF_COOKIE, path=AUTHORIZE_PATH)
        return response

    return router
