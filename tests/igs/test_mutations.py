"""Generated mutations of every shipped CRD, DTR and PAS example are rejected at the right path.

Mutation sites are not hand-picked: the validator's visit log of the original example lists every value with
the element definition it was checked against, and each category below derives its candidate sites from it
(elements with ``min >= 1``, with a finite ``max`` reached, with ``fixed``/``pattern``, with a required
binding the example satisfies, slices with ``min >= 1``, complex elements that can carry extensions, typed
references, Periods and Bundles for invariants). A deterministic sample of the candidates is applied.
Set PRIORGATE_MUTATIONS_PER_CATEGORY to try more sites per example and category (default 2).
"""

from __future__ import annotations

import copy
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from igs.outcome import Issue
from igs.packages import Package
from igs.structure import PRIMITIVES
from igs.validator import Validator, Visit

pytestmark = pytest.mark.igs

CATEGORIES = (
    "required-removed",
    "cardinality-exceeded",
    "fixed-or-pattern",
    "binding",
    "slice-broken",
    "unknown-extension",
    "reference-type",
    "invariant",
)
PER_CATEGORY = int(os.environ.get("PRIORGATE_MUTATIONS_PER_CATEGORY", "2"))
_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")
_BINDABLE = ("code", "Coding", "CodeableConcept")


@dataclass(frozen=True)
class Mutation:
    category: str
    description: str
    apply: Callable[[dict[str, Any]], None]
    expected_path: str
    markers: tuple[str, ...] = ("",)  # the error's diagnostics must contain one of these


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for i, match in enumerate(_STEP.finditer(path)):
        if i > 0:
            steps.append(match.group(1))
        if match.group(2) is not None:
            steps.append(int(match.group(2)))
    return steps


def _at(doc: Any, steps: list[str | int]) -> Any:
    """Follow ``steps``; a primitive's ``id``/``extension`` live in its ``_name`` sibling (R4 JSON)."""
    cur = doc
    i = 0
    while i < len(steps):
        step = steps[i]
        if isinstance(step, str) and isinstance(cur, dict):
            index = steps[i + 1] if i + 1 < len(steps) and isinstance(steps[i + 1], int) else None
            after = i + 1 + (index is not None)
            value = cur.get(step)
            target = value[index] if index is not None and isinstance(value, list) else value
            if after < len(steps) and not isinstance(target, dict | list):
                shadow = cur["_" + step]
                target = shadow[index] if index is not None else shadow
            cur, i = target, after
        else:
            cur = cur[step]
            i += 1
    return cur


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


def _near(error_path: str, expected: str) -> bool:
    """The error is at the mutated element, inside it, or at most three steps above it (array, parent)."""
    if error_path == expected or error_path.startswith((expected + ".", expected + "[")):
        return True
    return expected.startswith(error_path) and _depth(expected) - _depth(error_path) <= 3


def _array_path(path: str) -> str:
    return path[: path.rindex("[")] if path.endswith("]") else path


def _candidates(validator: Validator, doc: dict[str, Any], visits: list[Visit]) -> Iterator[Mutation]:
    items_per_slice: dict[tuple[str, int], set[int]] = {}
    for v in visits:
        if v.node.slice_name is not None and v.path.endswith("]"):
            items_per_slice.setdefault((_array_path(v.path), id(v.node)), set()).add(
                int(v.path[v.path.rindex("[") + 1 : -1])
            )
    seen_arrays: set[str] = set()
    for v in visits:
        steps = _steps(v.path)
        if not steps:
            continue
        node = v.node
        in_array = isinstance(steps[-1], int)
        key_steps = steps[:-1] if in_array else steps
        parent_steps = key_steps[:-1]
        key = key_steps[-1]
        parent_path = v.path[: v.path.rindex("." + str(key))]
        # required element removed (outside slices: those are the slice category)
        if node.min >= 1 and node.slice_name is None and isinstance(key, str) and parent_path:
            container = _at(doc, parent_steps)
            raw = container.get(key) if isinstance(container, dict) else None
            if not in_array or (isinstance(raw, list) and len(raw) == 1):
                yield Mutation(
                    "required-removed",
                    f"remove {v.path}",
                    lambda d, ps=parent_steps, k=key: _remove(_at(d, ps), k),
                    f"{parent_path}.{node.name.replace('[x]', '')}",
                    ("minimum required", "ele-1"),  # removing an element's only child empties the parent
                )
        # cardinality exceeded: a repeating element (or slice) already at its maximum
        # (an extension definition's root cardinality describes usage, not this array: not enforced)
        if (
            in_array
            and node.max is not None
            and node.max >= 1
            and node.repeats
            and node.plan.root is not node
        ):
            array_path = _array_path(v.path)
            if node.slice_name is not None:
                count = len(items_per_slice.get((array_path, id(node)), ()))
            else:
                count = len(_at(doc, key_steps))
            marker_key = f"{array_path}|{id(node)}"
            if count == node.max and marker_key not in seen_arrays:
                seen_arrays.add(marker_key)
                yield Mutation(
                    "cardinality-exceeded",
                    f"duplicate {v.path} (max {node.max})",
                    lambda d, ks=key_steps, s=steps: _at(d, ks).append(copy.deepcopy(_at(d, s))),
                    array_path,
                    ("maximum allowed",),
                )
        # wrong fixed or pattern value
        constrained = node.fixed if node.fixed is not None else node.pattern
        if constrained is not None and not _selects_open_slice(v.path, visits):
            mutate = _wrong_value(v.value, constrained)
            if mutate is not None:
                yield Mutation("fixed-or-pattern", f"change {v.path}", _setter(steps, mutate), v.path)
        # code outside a required binding the example satisfies
        if node.binding_strength == "required" and node.binding_value_set and v.type_code in _BINDABLE:
            expansion = validator.terminology.expand(node.binding_value_set.split("|")[0], node.plan.package)
            pairs = _codes(v.value, v.type_code)
            if pairs and all(expansion.verdict(s, c) == "member" for s, c in pairs):
                yield Mutation(
                    "binding",
                    f"code outside {expansion.url} at {v.path}",
                    _setter(steps, _bad_code(v.type_code)),
                    v.path,
                )
        # slice with min >= 1 emptied
        if node.slice_name is not None and node.min >= 1 and in_array and node.base is not None:
            array_path = _array_path(v.path)
            indexes = sorted(items_per_slice.get((array_path, id(node)), ()))
            marker_key = f"slice|{array_path}|{id(node)}"
            if indexes and marker_key not in seen_arrays:
                seen_arrays.add(marker_key)
                yield Mutation(
                    "slice-broken",
                    f"remove all {node.slice_name} items from {array_path}",
                    lambda d, ks=key_steps, ix=tuple(indexes): _drop(d, ks, ix),
                    array_path,
                    ("Slice", "minimum required"),  # the array's own minimum may fire first
                )
        # unknown extension on a complex element
        if v.type_code not in PRIMITIVES and isinstance(v.value, dict) and v.type_code != "Extension":
            if "extension" in validator._children(node, v.type_code):  # noqa: SLF001 - the same children
                position = len(v.value.get("extension", []))
                yield Mutation(
                    "unknown-extension",
                    f"unknown extension on {v.path}",
                    lambda d, s=steps: (
                        _at(d, s)
                        .setdefault("extension", [])
                        .append(
                            {
                                "url": "http://example.org/fhir/StructureDefinition/not-defined",
                                "valueString": "x",
                            }
                        )
                    ),
                    f"{v.path}.extension[{position}]",
                )
        # reference to a resource type no target profile allows
        if (
            v.type_code == "Reference"
            and isinstance(v.value, dict)
            and isinstance(v.value.get("reference"), str)
        ):
            targets = [p for t in node.types for p in t.target_profiles]
            if targets and not any(p.endswith(("/Resource", "/Basic")) for p in targets):
                allowed = {
                    plan.type
                    for plan in (validator.profiles.plan(p, node.plan.package) for p in targets)
                    if plan is not None
                }
                wrong = next(
                    (
                        e["fullUrl"]
                        for e in doc.get("entry", [])
                        if doc.get("resourceType") == "Bundle"
                        if isinstance(e, dict)
                        and isinstance(e.get("fullUrl"), str)
                        and isinstance(e.get("resource"), dict)
                        and allowed
                        and e["resource"].get("resourceType") not in allowed
                    ),
                    None,
                )
                if wrong is not None:  # a Bundle-internal reference to an entry of the wrong type
                    yield Mutation(
                        "reference-type",
                        f"point {v.path} at Bundle entry {wrong}",
                        lambda d, s=steps, w=wrong: _at(d, s).__setitem__("reference", w),
                        f"{v.path}.reference",
                    )
                yield Mutation(
                    "reference-type",
                    f"point {v.path} at a Basic",
                    lambda d, s=steps: _at(d, s).__setitem__("reference", "Basic/mutant"),
                    f"{v.path}.reference",
                )
        # invariants: ele-1 (empty element), per-1 (Period end before start), bdl-7 (duplicate fullUrl)
        if v.type_code not in PRIMITIVES and isinstance(v.value, dict) and "resourceType" not in v.value:
            yield Mutation("invariant", f"empty {v.path}", _setter(steps, lambda _: {}), v.path, ("ele-1",))
        if v.type_code == "Period" and isinstance(v.value, dict) and {"start", "end"} <= set(v.value):
            yield Mutation(
                "invariant",
                f"end before start at {v.path}",
                _setter(steps, lambda _: {"start": "2030-01-02", "end": "2020-01-01"}),
                v.path,
                ("per-1",),
            )
    if doc.get("resourceType") == "Bundle":
        entries = [e for e in doc.get("entry", []) if isinstance(e, dict) and "fullUrl" in e]
        if len(entries) >= 2:

            def duplicate(d: dict[str, Any]) -> None:
                with_url = [e for e in d["entry"] if "fullUrl" in e]
                with_url[1]["fullUrl"] = with_url[0]["fullUrl"]

            yield Mutation("invariant", "duplicate fullUrl", duplicate, "Bundle", ("bdl-7",))


def _selects_open_slice(path: str, visits: list[Visit]) -> bool:
    """Whether the value at ``path`` is what puts its item into a slice of an open slicing.

    Changing such a value (an identifier system, a category pattern) only moves the item out of the slice,
    which an open slicing allows; those sites are no fixed/pattern mutation.
    """
    for v in visits:
        base = v.node.base
        if (
            v.node.slice_name is None
            or base is None
            or base.slicing is None
            or base.slicing.rules == "closed"
        ):
            continue
        if not (path == v.path or path.startswith(v.path + ".")) or v.node.min >= 1:
            continue
        relative = re.sub(r"\[\d+\]", "", path[len(v.path) + 1 :])
        for d in base.slicing.discriminators:
            plain = re.sub(r"\.?(ofType|as)\([^)]*\)", "", d.path.replace("$this", ""))
            if plain == relative or plain.startswith(relative + ".") or d.path.startswith("extension("):
                return True
    return False


def _remove(container: dict[str, Any], key: str) -> None:
    container.pop(key)
    container.pop("_" + key, None)  # a primitive's extensions alone would still count as present


def _setter(steps: list[str | int], new: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        parent = _at(doc, steps[:-1])
        parent[steps[-1]] = new(parent[steps[-1]])

    return apply


def _drop(doc: dict[str, Any], key_steps: list[str | int], indexes: tuple[int, ...]) -> None:
    array = _at(doc, key_steps)
    for i in sorted(indexes, reverse=True):
        del array[i]
    if not array:
        _at(doc, key_steps[:-1]).pop(key_steps[-1])


def _wrong_value(value: Any, constrained: Any) -> Callable[[Any], Any] | None:
    if isinstance(value, bool):
        return lambda v: not v
    if isinstance(value, str):
        return lambda v: v + "-mutant"
    if isinstance(value, int):
        return lambda v: v + 1
    if isinstance(value, dict) and isinstance(constrained, dict):
        leaf = _first_leaf(constrained)
        if leaf is not None:
            return lambda v, lf=leaf: _mutate_leaf(copy.deepcopy(v), lf)
    return None


def _first_leaf(pattern: Any, trail: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    if isinstance(pattern, dict):
        for k, v in pattern.items():
            found = _first_leaf(v, (*trail, k))
            if found is not None:
                return found
        return None
    if isinstance(pattern, list):
        return _first_leaf(pattern[0], (*trail, 0)) if pattern else None
    return trail if isinstance(pattern, str) else None


def _mutate_leaf(value: Any, leaf: tuple[str | int, ...]) -> Any:
    """Change, in every array item on the way, the string at ``leaf`` (so no item still matches)."""

    def walk(node: Any, rest: tuple[str | int, ...]) -> None:
        if not rest:
            return
        head, tail = rest[0], rest[1:]
        if isinstance(head, int):
            for item in node if isinstance(node, list) else []:
                walk(item, tail)
            return
        if not isinstance(node, dict) or head not in node:
            return
        if not tail and isinstance(node[head], str):
            node[head] = node[head] + "-mutant"
        else:
            walk(node[head], tail)

    walk(value, leaf)
    return value


def _codes(value: Any, type_code: str) -> list[tuple[str | None, str]]:
    if type_code == "code":
        return [(None, value)] if isinstance(value, str) else []
    if type_code == "Coding":
        return [(value.get("system"), value["code"])] if isinstance(value.get("code"), str) else []
    return [(c.get("system"), c["code"]) for c in value.get("coding", []) if isinstance(c.get("code"), str)]


def _bad_code(type_code: str) -> Callable[[Any], Any]:
    if type_code == "code":
        return lambda _: "zz-not-a-code"

    def change(value: Any) -> Any:
        value = copy.deepcopy(value)
        for coding in value.get("coding", []) if type_code == "CodeableConcept" else [value]:
            coding["code"] = "zz-not-a-code"
        return value

    return change


def _sample(mutations: list[Mutation], seed: str) -> list[Mutation]:
    chosen: list[Mutation] = []
    for category in CATEGORIES:
        pool = sorted((m for m in mutations if m.category == category), key=lambda m: m.description)
        chosen.extend(random.Random(f"{seed}:{category}").sample(pool, min(PER_CATEGORY, len(pool))))
    return chosen


def _rejected(issues: list[Issue], mutation: Mutation) -> bool:
    return any(
        i.severity in ("error", "fatal")
        and any(marker in i.diagnostics for marker in mutation.markers)
        and any(_near(p, mutation.expected_path) for p in i.expression)
        for i in issues
    )


@pytest.fixture(scope="session")
def tally() -> dict[str, int]:
    return dict.fromkeys(CATEGORIES, 0)


def test_mutations_are_rejected(
    validator: Validator, example: tuple[Package, str, dict[str, Any]], tally: dict[str, int]
) -> None:
    package, filename, original = example
    visits: list[Visit] = []
    baseline = validator.findings(original, visits=visits, package=package)
    assert not [f for f in baseline if f.issue.severity == "error"], "the example itself must be valid"
    missed: list[str] = []
    for mutation in _sample(list(_candidates(validator, original, visits)), f"{package.key}/{filename}"):
        doc = copy.deepcopy(original)
        mutation.apply(doc)
        tally[mutation.category] += 1
        issues = validator.validate(doc, package=package)
        if not _rejected(issues, mutation):
            got = [f"{i.expression}: {i.diagnostics}" for i in issues if i.severity == "error"][:5]
            where = f"expected at {mutation.expected_path}"
            missed.append(f"{mutation.category}: {mutation.description} ({where}); got {got}")
    assert missed == []


def test_mutation_summary(tally: dict[str, int]) -> None:
    """Runs after the parametrised test above (file order): every category was exercised."""
    print(f"\nmutations tried: {sum(tally.values())} {tally}")
    if sum(tally.values()) == 0:
        pytest.skip("no examples were mutated (PRIORGATE_IG_PATH unset or test selected alone)")
    assert all(count > 0 for count in tally.values()), tally
