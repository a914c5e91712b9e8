"""Bad PAS Bundles never raise anything but X12Error (the server would otherwise answer 500)."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from x12 import X12Error, bundle_to_278_request, inquiry_bundle_to_278_request, response_278_to_bundle
from x12.envelope import ControlNumbers

NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden"
NAMES = sorted(p.name for p in GOLDEN.iterdir() if (p / "request.json").exists())
ODD_VALUES: list[Any] = [None, "", "x", 0, -1, 1.5, True, [], {}, [1, "a"], {"reference": 5}, {"coding": 1}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return root


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(NAMES), st.integers(0, 2**32), st.integers(1, 4))
def test_mutated_bundles_only_raise_x12_error(name: str, seed: int, edits: int) -> None:
    rng = random.Random(seed)
    original = json.loads((GOLDEN / name / "request.json").read_text("utf-8"), parse_float=Decimal)
    bundle = copy.deepcopy(original)
    for _ in range(edits):
        paths = _paths(bundle)
        bundle = _set(bundle, rng.choice(paths), copy.deepcopy(rng.choice(ODD_VALUES)))
    response = (GOLDEN / name / "response.x12").read_text("utf-8")
    for call in (
        lambda: bundle_to_278_request(bundle, control=ControlNumbers(), now=NOW),  # type: ignore[arg-type]
        lambda: inquiry_bundle_to_278_request(bundle, control=ControlNumbers(), now=NOW),  # type: ignore[arg-type]
        lambda: response_278_to_bundle(response, bundle, now=NOW),  # type: ignore[arg-type]
    ):
        try:
            call()
        except X12Error:
            pass
