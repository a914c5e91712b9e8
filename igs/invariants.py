"""FHIRPath invariants (``ElementDefinition.constraint.expression``) through fhirpathpy, compiled once.

fhirpathpy lacks ``resolve()``, ``memberOf()``, ``conformsTo()`` and ``htmlChecks()``. ``resolve()`` is given
through its user invocation table and resolves Bundle-local and contained references. Expressions using the
others are skipped and listed in :data:`UNSUPPORTED_FUNCTIONS`; so are the invariants checked natively by
the validator (:data:`NATIVE_KEYS`), which run on every element and would dominate the cost.
Spec: https://hl7.org/fhir/R4/conformance-rules.html#constraints, https://hl7.org/fhirpath/N1/
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import fhirpathpy
import orjson
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

# ele-1 (has value or children), ext-1 (value xor extensions) and ref-1 (contained target) are structural
# checks done natively; dom-3 (contained referenced) and dom-6 (narrative, best practice) are approximated or
# left out; txt-1/txt-2 need htmlChecks(); the Bundle invariants are native because fhirpathpy takes
# milliseconds to run entry.all()/isDistinct() over a whole Bundle.
NATIVE_KEYS = frozenset(
    {"ele-1", "ext-1", "ref-1", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "txt-1", "txt-2"}
    | {f"bdl-{n}" for n in (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12)}
)
UNSUPPORTED_FUNCTIONS = ("memberOf(", "conformsTo(", "htmlChecks(", "defineVariable(", "lowBoundary(")

_CONTEXT_MARKERS = ("%resource", "%rootResource", "%context", "resolve()", "%", "$index", "now()", "today()")

Resolver = Callable[[str], dict[str, Any] | None]


def _memo_default(value: object) -> object:
    """Memo keys for nodes holding exact decimals (JSON numbers with a fraction parse as Decimal)."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Invariants:
    """Compiled-expression cache plus the ``resolve()`` hook (per validation run, via a context variable)."""

    def __init__(self, memo_size: int = 8192) -> None:
        self._compiled: dict[str, Callable[..., list[Any]] | None] = {}
        # Results of context-free expressions, keyed by the focus element's JSON: an invariant that reads only
        # its focus is a pure function of it, and identifiers, codings and periods repeat across requests.
        self._results: dict[tuple[str, bytes], bool | None] = {}
        self._pure: dict[str, bool] = {}
        self.memo_size = memo_size
        self.skipped: dict[str, str] = {}  # expression -> why it is not evaluated
        self._resolver: ContextVar[Resolver | None] = ContextVar("priorgate_fhirpath_resolver", default=None)
        self._options = {
            "userInvocationTable": {
                "resolve": {"fn": self._resolve, "arity": {0: []}},
                "hasValue": {"fn": _has_value, "arity": {0: []}},
            },
            "traceFn": lambda *args: None,
        }

    def _resolve(self, inputs: list[Any]) -> list[Any]:
        resolver = self._resolver.get()
        out: list[Any] = []
        for item in inputs:
            data = item.data if isinstance(item, ResourceNode) else item
            ref = data.get("reference") if isinstance(data, dict) else data if isinstance(data, str) else None
            if ref and resolver is not None:
                target = resolver(ref)
                if target is not None:
                    out.append(target)
        return out

    def compiled(self, expression: str) -> Callable[..., list[Any]] | None:
        if expression in self._compiled:
            return self._compiled[expression]
        fn: Callable[..., list[Any]] | None = None
        unsupported = next((f for f in UNSUPPORTED_FUNCTIONS if f in expression), None)
        if unsupported is not None:
            self.skipped[expression] = f"uses {unsupported.rstrip('(')}()"
        else:
            try:
                fn = fhirpathpy.compile(booleanise(expression), models["r4"], self._options)
            except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions for parse errors
                self.skipped[expression] = f"does not compile: {exc}"
        self._compiled[expression] = fn
        return fn

    def holds(
        self,
        expression: str,
        node: Any,
        type_path: str,
        resource: dict[str, Any],
        root: dict[str, Any],
        resolver: Resolver | None,
    ) -> bool | None:
        """True/False for the invariant on ``node``; None when it cannot be evaluated here."""
        pure = self._pure.get(expression)
        if pure is None:
            pure = self._pure[expression] = not any(m in expression for m in _CONTEXT_MARKERS)
        if pure and self.memo_size:
            key = (f"{type_path}\n{expression}", orjson.dumps(node, default=_memo_default))
            if key in self._results:
                return self._results[key]
            outcome = self._evaluate(expression, node, type_path, resource, root, resolver)
            if len(self._results) >= self.memo_size:
                try:  # oldest first; tolerate another request thread evicting at the same moment
                    self._results.pop(next(iter(self._results)), None)
                except (RuntimeError, StopIteration):
                    pass
            self._results[key] = outcome
            return outcome
        return self._evaluate(expression, node, type_path, resource, root, resolver)

    def clear_memo(self) -> None:
        self._results.clear()

    def _evaluate(
        self,
        expression: str,
        node: Any,
        type_path: str,
        resource: dict[str, Any],
        root: dict[str, Any],
        resolver: Resolver | None,
    ) -> bool | None:
        fn = self.compiled(expression)
        if fn is None:
            return None
        token = self._resolver.set(resolver)
        try:
            target = ResourceNode.create_node(node, type_path) if type_path else node  # type: ignore[no-untyped-call]
            result = fn(target, {"resource": resource, "rootResource": root})
        except Exception as exc:  # noqa: BLE001 - an engine failure must not fail the validation
            self.skipped.setdefault(expression, f"fails in fhirpathpy: {exc}")
            return None
        finally:
            self._resolver.reset(token)
        if not result:
            return True  # an empty result means the constraint does not apply (FHIRPath spec §5.1)
        return all(v is True for v in result)


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath ``hasValue()``: a single primitive with a value (fhirpathpy does not implement it)."""
    if len(inputs) != 1:
        return [False]
    data = inputs[0].data if isinstance(inputs[0], ResourceNode) else inputs[0]
    return [data is not None and not isinstance(data, dict | list)]


_BOOLEAN_OPERATORS = ("implies", "and", "or", "xor")


def booleanise(expression: str) -> str:
    """Append ``.exists()`` to ``where(...)`` results used directly as boolean operands.

    FHIRPath (§5.1.1, singleton evaluation) reads a one-item collection as true in a boolean context;
    fhirpathpy instead raises "Expected boolean". IG invariants rely on the spec rule (CRD's crd-ci-q2 and
    crd-ci-q4: ``extension.where(...) implies ...``). An empty collection becomes false instead of empty,
    which gives the same verdict for ``implies``/``or`` and errs towards failing only for ``empty and true``.
    """
    out: list[str] = []
    i = 0
    while True:
        start = expression.find("where(", i)
        if start < 0:
            out.append(expression[i:])
            return "".join(out)
        depth, j = 0, start + len("where")
        while j < len(expression):
            if expression[j] == "(":
                depth += 1
            elif expression[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(expression[i : j + 1])
        rest = expression[j + 1 :].lstrip()
        if rest.split(" ", 1)[0] in _BOOLEAN_OPERATORS:
            out.append(".exists()")
        i = j + 1


def npi_check_digit(identifier: Any) -> bool:
    """us-core-17: an NPI's tenth digit is its Luhn check digit over ``80840`` + the first nine digits.

    Native because the US Core FHIRPath for it takes over a millisecond per identifier in fhirpathpy; values
    that are not ten digits pass here, as they do in the FHIRPath (us-core-16 checks the shape).
    """
    value = identifier.get("value") if isinstance(identifier, dict) else None
    if not isinstance(value, str) or len(value) != 10 or not value.isdigit():
        return True
    total = 24  # the doubled-and-summed contribution of the 80840 prefix
    for i, ch in enumerate(value[:9]):
        digit = int(ch) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10 == int(value[9])


def native_check(key: str, expression: str) -> Callable[[Any], bool] | None:
    """A native implementation of a well-known IG invariant, recognised by key and expression shape."""
    if key == "us-core-17" and "toInteger()" in expression and "substring(0,1)" in expression:
        return npi_check_digit
    return None
