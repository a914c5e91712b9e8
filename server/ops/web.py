"""The payer operations pages (server-rendered Jinja2, no JavaScript needed) and the public CMS-0057-F
metrics (HTML page, JSON and CSV, no sign-in).

Staff pages live under ``/ops``: a session cookie (HttpOnly, SameSite=Lax, path ``/ops``) names a
server-side session; every form carries the session's CSRF token, and a cross-origin ``Origin`` header is
refused. The public metrics are ``/metrics/cms-0057`` (``.json``, ``.csv``).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from igs.outcome import Failure, OperationOutcomeError
from server.app_launch.accounts import AccountError, AccountStore, new_account
from server.errors import status_of
from server.pas import urls
from server.pas.decision import Modification
from server.pas.fhirdata import Code
from server.pas.review import ReviewerAction, ReviewerDecision

from . import dashboard as figures
from .auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Permission,
    Role,
    allowed,
    new_token,
    same_origin,
    same_token,
)
from .facts import RequestFacts
from .filters import RequestFilter, by_time_left, choices, most_recent_first, select
from .metrics import report_csv, report_items, report_json
from .service import OpsService, Staff
from .store import Session

X12_886: Final = urls.CS_X12_REVIEW_DECISION_REASON  # HCR03 decision reason codes
PUBLIC_PATHS: Final = ("/metrics/cms-0057", "/metrics/cms-0057.json", "/metrics/cms-0057.csv")
NOTICES: Final[Mapping[str, str]] = {
    "decided": "Decision recorded and sent to the submitter.",
    "information": "Request for more information sent to the submitter.",
    "extended": "Due time extended.",
    "assigned": "Assignment updated.",
    "peer-to-peer": "Peer-to-peer updated.",
    "appeal": "Appeal recorded.",
    "signed-out": "You are signed out.",
}
router = APIRouter(include_in_schema=False)


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("server.ops", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hours"] = _hours
    env.filters["when"] = _when
    env.globals["left"] = _left
    env.globals["query"] = _query
    env.globals["request_url"] = request_url
    return env


def request_url(facts: RequestFacts, suffix: str = "") -> str:
    """The request page (or one of its forms, ``suffix``) of a request: its submission id, and its tenant
    when not the default one, so the URL names exactly one request of one organization."""
    path = f"/ops/requests/{urllib.parse.quote(facts.submission_id, safe='')}{suffix}"
    return path + ("?" + urllib.parse.urlencode({"tenant": facts.tenant}) if facts.tenant else "")


def _tenant(values: Mapping[str, str]) -> str | None:
    """The ``tenant`` a query string or form names (``None``: find the request by its id alone)."""
    found = values.get("tenant")
    return found if isinstance(found, str) and found else None


def _hours(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def _when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "–"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # stored timestamps without an offset are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _left(facts: RequestFacts, now: datetime) -> str:
    left = facts.time_left(now)
    if left is None:
        return "–"
    hours = left.total_seconds() / 3600
    if hours < 0:
        return f"overdue by {_hours(-hours)}"
    return _hours(hours)


def _query(base: str, wanted: RequestFilter | Mapping[str, str]) -> str:
    items = wanted.query_items() if isinstance(wanted, RequestFilter) else list(wanted.items())
    return base + ("?" + urllib.parse.urlencode(items) if items else "")


TEMPLATES: Final = _env()


def ops_service(request: Request) -> OpsService:
    found = request.app.state.ops
    assert isinstance(found, OpsService)
    return found


Ops = Annotated[OpsService, Depends(ops_service)]


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


class _SignIn(Exception):
    """Not signed in: answered with a redirect to the sign-in page."""


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    parsed = urllib.parse.parse_qs(raw, keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _same_origin(request: Request, ops: OpsService) -> bool:
    own = f"{request.url.scheme}://{request.url.netloc}"
    return same_origin(request.headers.get("origin"), own, ops.public_origin)


async def _signed_in(request: Request, ops: OpsService) -> tuple[Staff, Session] | None:
    return await run_in_threadpool(ops.signed_in, request.cookies.get(SESSION_COOKIE))


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/ops/login?" + urllib.parse.urlencode({"next": target}), status_code=303)


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/ops/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ops/queue"


async def _posted_form(request: Request, ops: OpsService) -> tuple[Staff, Session, dict[str, str]] | Response:
    """A staff form post: the signed-in staff member, the session and the form, or the answer to give
    instead (sign in first; 403 when the CSRF token or the origin does not match)."""
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    staff, session = signed
    form = await _form(request)
    if not _same_origin(request, ops) or not same_token(session.csrf_token, form.get("csrf")):
        return _page(
            "error.html",
            403,
            title="Refused",
            message="The form expired or came from another site; reload the page and try again.",
            **_context(staff, session),
        )
    return staff, session, form


def _context(staff: Staff, session: Session, **extra: Any) -> dict[str, Any]:
    return {
        "staff": staff,
        "csrf": session.csrf_token,
        "can": lambda p: staff.can(Permission(p)),
        **extra,
    }


# -- sign-in --------------------------------------------------------------------------------------------


@router.get("/ops")
async def ops_home() -> Response:
    return RedirectResponse("/ops/queue", status_code=303)


@router.get("/ops/login")
async def login_page(request: Request, ops: Ops) -> Response:
    if await _signed_in(request, ops) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    token = new_token()
    response = _page(
        "login.html",
        login_csrf=token,
        next=_safe_next(request.query_params.get("next")),
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )
    _set_cookie(response, LOGIN_CSRF_COOKIE, token, ops, max_age=1800)
    return response


def _set_cookie(response: Response, name: str, value: str, ops: OpsService, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ops",
        httponly=True,
        samesite="lax",
        secure=ops.secure_cookies,
    )


@router.post("/ops/login")
async def login(request: Request, ops: Ops) -> Response:
    form = await _form(request)
    if not _same_origin(request, ops) or not same_token(
        request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")
    ):
        return _page(
            "error.html", 403, title="Sign-in refused", message="The sign-in form expired; try again."
        )
    signed = await run_in_threadpool(ops.login, form.get("username", ""), form.get("password", ""))
    next_url = _safe_next(form.get("next"))
    if signed is None:
        token = new_token()
        refused = _page(
            "login.html",
            401,
            login_csrf=token,
            next=next_url,
            error="Unknown user name or wrong password.",
            username=form.get("username", ""),
        )
        _set_cookie(refused, LOGIN_CSRF_COOKIE, token, ops, max_age=1800)
        return refused
    token, session = signed
    response = RedirectResponse(next_url, status_code=303)
    max_age = int((session.expires - ops.now()).total_seconds())
    _set_cookie(response, SESSION_COOKIE, token, ops, max_age=max_age)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ops")
    return response


@router.post("/ops/logout")
async def logout(request: Request, ops: Ops) -> Response:
    form = await _form(request)
    signed = await _signed_in(request, ops)
    if (
        signed is not None
        and same_token(signed[1].csrf_token, form.get("csrf"))
        and _same_origin(request, ops)
    ):
        await run_in_threadpool(ops.logout, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ops/login?notice=signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ops")
    return response


# -- the work queue and request lists ---------------------------------------------------------------------


@router.get("/ops/queue")
async def queue_page(request: Request, ops: Ops) -> Response:
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    staff, session = signed
    query = dict(request.query_params)
    if query.pop("mine", "") == "1":
        query["assignee"] = staff.username
    wanted = RequestFilter.from_query(query)
    everything = await run_in_threadpool(ops.facts, open_only=True)
    rows = by_time_left(select(everything, wanted, ops.now()))
    peer_to_peer = await run_in_threadpool(ops.store.peer_to_peer_states)
    return _page(
        "queue.html",
        **_context(
            staff,
            session,
            title="Review work queue",
            rows=rows,
            wanted=wanted,
            options=choices(everything),
            now=ops.now(),
            reviewers=[u for u in ops.staff() if allowed(u.role, Permission.DECIDE)],
            queue=True,
            peer_to_peer=peer_to_peer,
        ),
    )


@router.get("/ops/requests")
async def requests_page(request: Request, ops: Ops) -> Response:
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    staff, session = signed
    wanted = RequestFilter.from_query(dict(request.query_params))
    everything = await run_in_threadpool(ops.facts)
    rows = most_recent_first(select(everything, wanted, ops.now()))
    return _page(
        "queue.html",
        **_context(
            staff,
            session,
            title="Requests",
            rows=rows,
            wanted=wanted,
            options=choices(everything),
            now=ops.now(),
            reviewers=[],
            queue=False,
            peer_to_peer={},
        ),
    )


# -- one request ------------------------------------------------------------------------------------------


async def _detail_page(
    request: Request,
    ops: OpsService,
    staff: Staff,
    session: Session,
    submission_id: str,
    *,
    tenant: str | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    try:
        detail = await run_in_threadpool(ops.detail, submission_id, tenant)
    except OperationOutcomeError as exc:
        return _page(
            "error.html",
            status_of(exc.failure),
            title="Not found",
            message=exc.message,
            **_context(staff, session),
        )
    return _page(
        "detail.html",
        status,
        **_context(
            staff,
            session,
            title=f"Request {detail.facts.claim_identifier}",
            d=detail,
            f=detail.facts,
            now=ops.now(),
            error=error,
            notice=NOTICES.get(request.query_params.get("notice", "")),
            reviewers=[u for u in ops.staff() if allowed(u.role, Permission.DECIDE)],
        ),
    )


@router.get("/ops/requests/{submission_id}")
async def request_page(submission_id: str, request: Request, ops: Ops) -> Response:
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    return await _detail_page(request, ops, *signed, submission_id, tenant=_tenant(request.query_params))


def _decisions(form: Mapping[str, str], sequences: list[int]) -> list[ReviewerDecision]:
    out = []
    for sequence in sequences:
        action = form.get(f"action-{sequence}", "")
        if not action:
            continue
        try:
            chosen = ReviewerAction(action)
        except ValueError:
            raise OperationOutcomeError.of(Failure.INVALID, f"Unknown decision {action!r}") from None
        reason_code = form.get(f"reason-code-{sequence}", "").strip().upper()
        if reason_code and not re.fullmatch(r"[A-Z0-9]{1,10}", reason_code):
            raise OperationOutcomeError.of(
                Failure.INVALID, f"Item {sequence}: {reason_code!r} is not a reason code"
            )
        reason_text = form.get(f"reason-text-{sequence}", "").strip()
        modification = None
        if chosen is ReviewerAction.MODIFY:
            product = form.get(f"modified-code-{sequence}", "").strip()
            if not product:
                raise OperationOutcomeError.of(
                    Failure.INVALID, f"Item {sequence}: say what is authorized instead (a procedure code)"
                )
            quantity = None
            raw_quantity = form.get(f"modified-quantity-{sequence}", "").strip()
            if raw_quantity:
                try:
                    quantity = Decimal(raw_quantity)
                except InvalidOperation:
                    raise OperationOutcomeError.of(
                        Failure.INVALID, f"Item {sequence}: quantity is not a number"
                    ) from None
            system = form.get(f"modified-system-{sequence}", "").strip() or "http://www.ama-assn.org/go/cpt"
            modification = Modification(Code(system, product), quantity)
        if chosen is ReviewerAction.DENY and (not reason_code or not reason_text):
            raise OperationOutcomeError.of(
                Failure.INVALID,
                f"Item {sequence}: a denial needs a reason code and a specific reason the submitter can read",
            )
        out.append(
            ReviewerDecision(
                sequence,
                chosen,
                Code(X12_886, reason_code) if reason_code else None,
                reason_text or None,
                modification,
            )
        )
    return out


async def _action(request: Request, ops: OpsService, submission_id: str, notice: str, run: Any) -> Response:
    posted = await _posted_form(request, ops)
    if isinstance(posted, Response):
        return posted
    staff, session, form = posted
    tenant = _tenant(form)
    try:
        await run_in_threadpool(run, staff, form, tenant)
    except OperationOutcomeError as exc:
        return await _detail_page(
            request,
            ops,
            staff,
            session,
            submission_id,
            tenant=tenant,
            error=exc.message,
            status=status_of(exc.failure),
        )
    delivery = getattr(request.app.state.services, "delivery", None)
    if delivery is not None:
        delivery.wake()  # the submitter's subscribers hear of a decision now, not at the next poll
    query = urllib.parse.urlencode({"notice": notice} | ({"tenant": tenant} if tenant else {}))
    return RedirectResponse(
        f"/ops/requests/{urllib.parse.quote(submission_id, safe='')}?{query}", status_code=303
    )


@router.post("/ops/requests/{submission_id}/decision")
async def decide(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        facts = ops.locate(submission_id, tenant)
        sequences = [p.sequence for p in facts.procedures if p.action == "A4"]
        ops.decide(staff, submission_id, _decisions(form, sequences), facts.tenant)

    return await _action(request, ops, submission_id, "decided", run)


@router.post("/ops/requests/{submission_id}/information")
async def information(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        due = None
        if form.get("due"):
            try:
                due = date.fromisoformat(form["due"])
            except ValueError:
                raise OperationOutcomeError.of(Failure.INVALID, "The due date is not a date") from None
        ops.request_information(
            staff, submission_id, form.get("text", ""), form.get("loinc", ""), due, tenant
        )

    return await _action(request, ops, submission_id, "information", run)


@router.post("/ops/requests/{submission_id}/extension")
async def extension(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        raw = form.get("hours", "")
        if not raw.isdigit():
            raise OperationOutcomeError.of(Failure.INVALID, "The extension is a whole number of hours")
        if not form.get("reason", "").strip():
            raise OperationOutcomeError.of(Failure.INVALID, "An extension needs a reason")
        ops.extend(staff, submission_id, int(raw), form.get("reason", ""), tenant)

    return await _action(request, ops, submission_id, "extended", run)


@router.post("/ops/requests/{submission_id}/assignment")
async def assignment(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        target = form.get("assignee", "").strip()
        ops.assign(staff, submission_id, staff.username if target == "me" else (target or None), tenant)

    return await _action(request, ops, submission_id, "assigned", run)


@router.post("/ops/requests/{submission_id}/peer-to-peer")
async def peer_to_peer(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        ops.peer_to_peer(
            staff,
            submission_id,
            form.get("status", ""),
            form.get("scheduled_for", ""),
            form.get("notes", ""),
            tenant,
        )

    return await _action(request, ops, submission_id, "peer-to-peer", run)


@router.post("/ops/requests/{submission_id}/appeal")
async def appeal(submission_id: str, request: Request, ops: Ops) -> Response:
    def run(staff: Staff, form: Mapping[str, str], tenant: str | None) -> None:
        ops.appeal(staff, submission_id, form.get("status", ""), form.get("notes", ""), tenant)

    return await _action(request, ops, submission_id, "appeal", run)


# -- dashboard --------------------------------------------------------------------------------------------


def _year(raw: str | None, default: int, *, strict: bool = False) -> int:
    """The ``year`` parameter (2000-2100); without it, ``default``. ``strict``: a bad value is a 400."""
    if raw and raw.isdigit() and 2000 <= int(raw) <= 2100:
        return int(raw)
    if strict and raw is not None:
        raise OperationOutcomeError.of(
            Failure.INVALID, f"year must be a calendar year (2000-2100), not {raw!r}"
        )
    return default


PUBLIC_CACHE: Final = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


@router.get("/ops/dashboard")
async def dashboard_page(request: Request, ops: Ops) -> Response:
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    staff, session = signed
    now = ops.now()
    year = _year(request.query_params.get("year"), now.year)
    facts = await run_in_threadpool(ops.facts)
    rates = {
        dim: figures.first_pass_rates(facts, year, dim) for dim in ("specialty", "payer", "procedure", "site")
    }
    distributions = figures.turnaround(facts, year)
    charts = [
        (
            d,
            figures.bar_chart_svg(
                f"Turnaround, {d.urgency.value} requests, {year}",
                [
                    (
                        label,
                        count,
                        _query(
                            "/ops/requests",
                            RequestFilter(year=str(year), urgency=d.urgency.value, turnaround=label),
                        ),
                    )
                    for label, count in d.counts
                ],
            ),
        )
        for d in distributions
    ]
    return _page(
        "dashboard.html",
        **_context(
            staff,
            session,
            title="Operations dashboard",
            year=year,
            rates=rates,
            charts=charts,
            exposure=figures.exposure(facts, now),
            denials=figures.denial_reasons(facts, year),
            stale=figures.stale_rules(ops.rules(), now.date()),
            RequestFilter=RequestFilter,
        ),
    )


# -- public CMS-0057-F metrics ------------------------------------------------------------------------------


@router.get("/metrics/cms-0057")
async def metrics_page(request: Request, ops: Ops) -> Response:
    year = _year(request.query_params.get("year"), ops.now().year - 1)
    report = await run_in_threadpool(ops.cms_report, year)
    return _page(
        "metrics.html",
        title=f"Prior authorization metrics {year}",
        report=report,
        items=report_items(report),
        payer=ops.payer_name,
        year=year,
    )


@router.get("/metrics/cms-0057.json")
async def metrics_json(request: Request, ops: Ops) -> Response:
    year = _year(request.query_params.get("year"), ops.now().year - 1, strict=True)
    report = await run_in_threadpool(ops.cms_report, year)
    return JSONResponse(report_json(report, payer=ops.payer_name), headers=PUBLIC_CACHE)


@router.get("/metrics/cms-0057.csv")
async def metrics_csv(request: Request, ops: Ops) -> Response:
    year = _year(request.query_params.get("year"), ops.now().year - 1, strict=True)
    report = await run_in_threadpool(ops.cms_report, year)
    return Response(
        report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="cms-0057-metrics-{year}.csv"',
            **PUBLIC_CACHE,
        },
    )


__all__ = ["PUBLIC_PATHS", "Role", "router"]


# -- patient logins (SMART App Launch for patients, server/app_launch): administrators only ---------------


def _patient_logins(ops: OpsService) -> AccountStore:
    return AccountStore(ops.resources.engine)


async def _patients_page(
    ops: OpsService, staff: Staff, session: Session, *, status: int = 200, **extra: Any
) -> Response:
    if staff.role is not Role.ADMIN:
        return _page(
            "error.html",
            403,
            title="Administrators only",
            message="Only administrators manage patient logins.",
            **_context(staff, session),
        )
    accounts = await run_in_threadpool(_patient_logins(ops).all)
    return _page(
        "patients.html",
        status,
        **_context(staff, session, title="Patient logins", accounts=accounts, active="patients", **extra),
    )


@router.get("/ops/patients")
async def patients_page(request: Request, ops: Ops) -> Response:
    signed = await _signed_in(request, ops)
    if signed is None:
        return _to_sign_in(request)
    notice = "Patient login added." if request.query_params.get("notice") == "added" else None
    return await _patients_page(ops, *signed, notice=notice)


@router.post("/ops/patients")
async def add_patient(request: Request, ops: Ops) -> Response:
    posted = await _posted_form(request, ops)
    if isinstance(posted, Response):
        return posted
    staff, session, form = posted
    if staff.role is not Role.ADMIN:
        return await _patients_page(ops, staff, session)
    try:
        account = await run_in_threadpool(
            new_account,
            form.get("username", ""),
            tenant=form.get("tenant", "").strip(),
            patient_id=form.get("patient", "").strip(),
            password=form.get("password", ""),
            passwords=ops.passwords,
            display_name=form.get("name", "").strip(),
        )
        await run_in_threadpool(_patient_logins(ops).add, account, ops.now())
    except AccountError as exc:
        return await _patients_page(ops, staff, session, status=422, error=str(exc))
    except IntegrityError:
        return await _patients_page(ops, staff, session, status=409, error="That user name is taken.")
    return RedirectResponse("/ops/patients?notice=added", status_code=303)
