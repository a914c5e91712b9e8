"""The one error currency: a FHIR OperationOutcome raised as an exception.

Domain code raises :class:`OperationOutcomeError` with one or more :class:`Issue` values and a
:class:`Failure` saying what kind of failure it is. ``server/errors.py`` maps each ``Failure`` to an
HTTP status in one table; nothing else chooses status codes.

Spec: https://hl7.org/fhir/R4/operationoutcome.html (IssueType codes:
https://hl7.org/fhir/R4/valueset-issue-type.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Severity = Literal["fatal", "error", "warning", "information"]


class Failure(StrEnum):
    """What went wrong, independent of transport. Each member has one HTTP status (server/errors.py)."""

    INVALID = "invalid"  # malformed or structurally wrong input
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    NOT_ACCEPTABLE = "not-acceptable"
    CONFLICT = "conflict"
    GONE = "gone"
    PRECONDITION_FAILED = "precondition-failed"
    TOO_LARGE = "too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    UNPROCESSABLE = "unprocessable"  # well-formed but breaks a profile or business rule
    UNAVAILABLE = "unavailable"  # a dependency (database, downstream payer, IG package) is missing or down
    INTERNAL = "internal"


# The IssueType code each failure carries when the raiser does not name one.
DEFAULT_ISSUE_CODE: dict[Failure, str] = {
    Failure.INVALID: "invalid",
    Failure.UNAUTHENTICATED: "login",
    Failure.FORBIDDEN: "forbidden",
    Failure.NOT_FOUND: "not-found",
    Failure.METHOD_NOT_ALLOWED: "not-supported",
    Failure.NOT_ACCEPTABLE: "not-supported",
    Failure.CONFLICT: "conflict",
    Failure.GONE: "deleted",
    Failure.PRECONDITION_FAILED: "conflict",
    Failure.TOO_LARGE: "too-costly",
    Failure.UNSUPPORTED_MEDIA_TYPE: "not-supported",
    Failure.UNPROCESSABLE: "processing",
    Failure.UNAVAILABLE: "transient",
    Failure.INTERNAL: "exception",
}


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    diagnostics: str
    code: str = "invalid"
    severity: Severity = "error"
    expression: tuple[str, ...] = ()
    details: dict[str, Any] | None = None  # a CodeableConcept, when a coded reason exists

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        out["diagnostics"] = self.diagnostics
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """Render issues as an OperationOutcome resource (at least one issue, as R4 requires)."""
    rendered = [issue.to_fhir() for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": rendered}


@dataclass
class OperationOutcomeError(Exception):
    """Raised anywhere below the HTTP edge; rendered as an OperationOutcome by server/errors.py."""

    failure: Failure
    issues: Sequence[Issue] = field(default_factory=tuple)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues) or self.failure.value

    def to_fhir(self) -> dict[str, Any]:
        return operation_outcome(self.issues)

    @classmethod
    def of(
        cls,
        failure: Failure,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: Sequence[str] = (),
        headers: dict[str, str] | None = None,
    ) -> OperationOutcomeError:
        """One-issue shorthand: ``OperationOutcomeError.of(Failure.NOT_FOUND, "Patient/1 is gone")``."""
        issue = Issue(
            diagnostics=diagnostics,
            code=code or DEFAULT_ISSUE_CODE[failure],
            expression=tuple(expression),
        )
        return cls(failure, (issue,), dict(headers or {}))


def invalid(diagnostics: str, *expression: str, code: str = "invalid") -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.INVALID, diagnostics, code=code, expression=expression)


def not_found(diagnostics: str) -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.NOT_FOUND, diagnostics)


def unprocessable(diagnostics: str, *expression: str, code: str = "processing") -> OperationOutcomeError:
    return OperationOutcomeError.of(Failure.UNPROCESSABLE, diagnostics, code=code, expression=expression)
