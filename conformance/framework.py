"""A small black-box check framework: checks speak HTTP to a base URL and cite IG requirement ids.

A :class:`Suite` is an ordered tuple of :class:`Check` values. A check is a function taking a
:class:`Target` (an ``httpx.Client`` whose ``base_url`` is the server under test, plus the paths of
its FHIR and CDS Hooks bases) and returning nothing; it fails by raising :class:`CheckFailed` and
opts out by raising :class:`CheckSkipped`. Every check names the requirement ids it exercises
(``conformance/requirements/*.csv``), so the coverage report can say which SHALLs are tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx


class CheckFailed(AssertionError):
    """The server under test did not do what the requirement says."""


class CheckSkipped(Exception):
    """The check does not apply to this server (say why)."""


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


@dataclass(frozen=True)
class Target:
    """The server under test."""

    client: httpx.Client
    fhir_base: str = "/fhir"
    cds_base: str = "/cds-services"
    headers: Mapping[str, str] = field(default_factory=dict)
    # Headers of a patient-context token (SMART ``patient/`` scopes) for checks that need one; those
    # checks are skipped without it. The suite that uses it says which patient the token must name.
    patient_headers: Mapping[str, str] = field(default_factory=dict)
    # The id of the Organization the client acts for (a payer asking ``$member-match``): checks name it
    # as the Consent's recipient (``Organization/<id>``); the checks that need it are skipped without it.
    organization: str = ""

    def fhir(self, path: str = "") -> str:
        return f"{self.fhir_base.rstrip('/')}/{path.lstrip('/')}" if path else self.fhir_base

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.put(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.delete(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


CheckFunction = Callable[[Target], None]


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    requirements: tuple[str, ...]
    run: CheckFunction


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class CheckResult:
    suite: str
    check: str
    requirements: tuple[str, ...]
    outcome: Outcome
    message: str
    seconds: float


def check(check_id: str, title: str, *requirements: str) -> Callable[[CheckFunction], Check]:
    """Decorator turning a function into a :class:`Check` citing ``requirements``."""

    def wrap(function: CheckFunction) -> Check:
        return Check(id=check_id, title=title, requirements=tuple(requirements), run=function)

    return wrap


def expect(condition: bool, message: str) -> None:
    """Fail the running check with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_status(response: httpx.Response, *statuses: int) -> None:
    if response.status_code not in statuses:
        body = response.text[:300]
        raise CheckFailed(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}, "
            f"expected {' or '.join(map(str, statuses))}: {body}"
        )


def expect_operation_outcome(response: httpx.Response) -> dict[str, Any]:
    """The body is an OperationOutcome with at least one issue; return it."""
    try:
        body = response.json()
    except ValueError as exc:
        raise CheckFailed(f"body is not JSON: {response.text[:200]!r}") from exc
    expect(isinstance(body, dict), "body is not a JSON object")
    expect(body.get("resourceType") == "OperationOutcome", f"body is a {body.get('resourceType')!r}")
    expect(bool(body.get("issue")), "OperationOutcome has no issue")
    return dict(body)


def run_suite(suite: Suite, target: Target) -> list[CheckResult]:
    results: list[CheckResult] = []
    for item in suite.checks:
        started = time.perf_counter()
        try:
            item.run(target)
            outcome, message = Outcome.PASS, ""
        except CheckFailed as exc:
            outcome, message = Outcome.FAIL, str(exc)
        except CheckSkipped as exc:
            outcome, message = Outcome.SKIP, str(exc)
        except Exception as exc:  # noqa: BLE001 - a crashing check is reported, not raised
            outcome, message = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
        results.append(
            CheckResult(
                suite=suite.name,
                check=item.id,
                requirements=item.requirements,
                outcome=outcome,
                message=message,
                seconds=time.perf_counter() - started,
            )
        )
    return results


def run_suites(suites: Iterable[Suite], target: Target) -> list[CheckResult]:
    return [result for suite in suites for result in run_suite(suite, target)]
