"""The one table from failure kinds to HTTP statuses, and the handlers that render OperationOutcomes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from igs.outcome import Failure, Issue, OperationOutcomeError
from server.fhir_json import FhirResponse

log = logging.getLogger("priorgate.errors")

HTTP_STATUS: dict[Failure, int] = {
    Failure.INVALID: 400,
    Failure.UNAUTHENTICATED: 401,
    Failure.FORBIDDEN: 403,
    Failure.NOT_FOUND: 404,
    Failure.METHOD_NOT_ALLOWED: 405,
    Failure.NOT_ACCEPTABLE: 406,
    Failure.CONFLICT: 409,
    Failure.GONE: 410,
    Failure.PRECONDITION_FAILED: 412,
    Failure.TOO_LARGE: 413,
    Failure.UNSUPPORTED_MEDIA_TYPE: 415,
    Failure.UNPROCESSABLE: 422,
    Failure.INTERNAL: 500,
    Failure.UNAVAILABLE: 503,
}

# Starlette raises plain HTTP exceptions for routing failures; read them back into failures.
_FAILURE_BY_STATUS: dict[int, Failure] = {status: failure for failure, status in HTTP_STATUS.items()}


def status_of(failure: Failure) -> int:
    return HTTP_STATUS[failure]


def outcome_response(error: OperationOutcomeError) -> Response:
    return FhirResponse(
        error.to_fhir(), status_code=HTTP_STATUS[error.failure], headers=error.headers or None
    )


async def _on_outcome(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OperationOutcomeError)
    return outcome_response(exc)


async def _on_http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    failure = _FAILURE_BY_STATUS.get(exc.status_code, Failure.INVALID)
    text = exc.detail if isinstance(exc.detail, str) else failure.value
    return outcome_response(OperationOutcomeError.of(failure, text))


async def _on_request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = [
        Issue(diagnostics=f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}")
        for err in exc.errors()
    ]
    return outcome_response(OperationOutcomeError(Failure.INVALID, tuple(issues)))


# The database could not be reached or dropped the connection (stopped, restarting, network cut, pool
# exhausted): an outage, not a fault in the request. The pool pings before reuse, so the next request
# after the database is back is served; nothing was committed for the request that got the 503.
RETRY_AFTER_SECONDS = "2"


def database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def _on_database(request: Request, exc: Exception) -> Response:
    if not database_unavailable(exc):
        return await _on_unexpected(request, exc)
    log.warning("database unavailable: %s", type(exc.__cause__ or exc).__name__)
    return outcome_response(
        OperationOutcomeError.of(
            Failure.UNAVAILABLE,
            "The database is unavailable; retry shortly",
            code="transient",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    )


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    # A real fault: log the trace, never send it.
    log.exception("unhandled error", exc_info=exc)
    return outcome_response(OperationOutcomeError.of(Failure.INTERNAL, "Internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OperationOutcomeError, _on_outcome)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(DBAPIError, _on_database)
    app.add_exception_handler(PoolTimeoutError, _on_database)
    app.add_exception_handler(Exception, _on_unexpected)
