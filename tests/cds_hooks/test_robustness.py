"""Bad input of every shape gets a 4xx OperationOutcome, never a 500."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest

from cds_hooks import CdsServices
from cds_hooks.service import parse_json
from igs.outcome import Failure, OperationOutcomeError

JUNK: list[Any] = [
    None,
    1,
    "x",
    [],
    {},
    [1],
    {"resourceType": "Bundle"},
    {"resourceType": "OperationOutcome"},
]
FIELDS = [
    ("hook",),
    ("hookInstance",),
    ("fhirServer",),
    ("fhirAuthorization",),
    ("context",),
    ("prefetch",),
    ("extension",),
    ("context", "patientId"),
    ("context", "userId"),
    ("context", "draftOrders"),
    ("context", "draftOrders", "entry"),
    ("prefetch", "patient"),
    ("prefetch", "coverage"),
    ("extension", "davinci-crd.configuration"),
    ("extension", "davinci-crd.requestedVersion"),
]


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("path", FIELDS, ids=lambda p: ".".join(p))
def test_junk_never_yields_500(crd: Any, kit: ModuleType, path: tuple[str, ...]) -> None:
    valid = kit.order_sign(kit.service_request("sr1", kit.CPT, "72148"), configuration={"max-cards": 3})
    crd.fhir.fail = True  # hydration cannot rescue the junk either
    for value in JUNK:
        status = crd.call("order-sign-crd", _set(valid, path, value)).status_code
        assert status in (200, 400, 412, 422), (path, value, status)


def test_junk_in_other_hooks(crd: Any, kit: ModuleType) -> None:
    services: CdsServices = crd.services
    for spec in services.specs:
        for context in (
            {},
            {"patientId": 5},
            {"patientId": "pat1", "appointments": [], "dispatchedOrders": "x"},
        ):
            body = kit.hook_request(spec.hook, context, prefetch=kit.full_prefetch())
            status = crd.call(spec.id, body).status_code
            assert status in (200, 400, 412, 422), (spec.id, context, status)


def test_json_nested_past_the_parser_stack_is_a_400() -> None:
    # Regression: json.loads raised RecursionError, which escaped as a 500.
    deep = b'{"context":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(OperationOutcomeError) as caught:
        parse_json(deep)
    assert caught.value.failure is Failure.INVALID


def test_an_integer_beyond_64_bits_is_answered_exactly(crd: Any, kit: ModuleType) -> None:
    # Regression: the order (with its id) is echoed in the system action; orjson cannot write an integer
    # beyond 64 bits, so the answer was a 500.
    order = kit.service_request("sr1", kit.CPT, "72148") | {"id": 123456789012345678901234567}
    response = crd.call("order-sign-crd", kit.order_sign(order))
    assert response.status_code in (200, 400), response.text
