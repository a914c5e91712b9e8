"""Bad input never becomes a crash: every node of a request replaced by junk either parses or raises
an OperationOutcomeError, and whatever parses can be decided, answered and fingerprinted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from igs.outcome import OperationOutcomeError
from server.pas import (
    CoverageFinding,
    CoverageQuery,
    PasVersion,
    build_submit_response,
    decide,
    fingerprint,
    parse_inquiry_request,
    parse_pas_request,
)

JUNK: tuple[Any, ...] = (None, "x", 7, [], {"a": 1}, [None])


def _without_narrative(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_narrative(v) for k, v in node.items() if k != "text"}
    if isinstance(node, list):
        return [_without_narrative(v) for v in node]
    return node


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from _paths(value, (*path, n))


def _replace(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = orjson.loads(orjson.dumps(root))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _evaluate(query: CoverageQuery) -> CoverageFinding:
    return CoverageFinding("covered", "auth-needed", authorized_quantity=None)


@pytest.mark.parametrize(
    "version, name",
    [
        (PasVersion.V2_2_1, "Bundle-ReferralAuthorizationBundleExample.json"),
        (PasVersion.V2_2_1, "Bundle-HomecareAuthorizationUpdateBundleExample.json"),
        (PasVersion.V2_0_1, "Bundle-SurgicalRequestBundleExample.json"),
    ],
)
def test_junk_anywhere_is_an_operation_outcome_or_works(
    version: PasVersion, name: str, ig: Any, ids: Any, now: datetime
) -> None:
    bundle = _without_narrative(ig(version)[name])
    checked = 0
    for path in _paths(bundle):
        for junk in JUNK:
            mutated = _replace(bundle, path, junk)
            try:
                request = parse_pas_request(mutated, version)
            except OperationOutcomeError:
                continue
            decision = decide(request, _evaluate, ids, now)
            build_submit_response(request, decision, ids=ids, now=now)
            fingerprint(request)
            checked += 1
    assert checked > 100


def test_junk_inquiry_is_an_operation_outcome_or_works(ig: Any) -> None:
    version = PasVersion.V2_2_1
    bundle = _without_narrative(ig(version)["Bundle-PASClaimInquiryBundleExample.json"])
    for path in _paths(bundle):
        for junk in JUNK:
            try:
                parse_inquiry_request(_replace(bundle, path, junk), version)
            except OperationOutcomeError:
                pass
