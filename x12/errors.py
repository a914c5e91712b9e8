"""X12 errors: an :class:`igs.outcome.OperationOutcomeError` that names where in the interchange it happened.

Every malformed-input path in ``x12`` raises :class:`X12Error` (``Failure.INVALID``); nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from igs.outcome import Failure, Issue, OperationOutcomeError


class X12Error(OperationOutcomeError):
    """Malformed or unmappable X12 or PAS input, located by segment position, segment id and element."""

    @classmethod
    def at(
        cls,
        problem: str,
        *,
        position: int | None = None,
        segment_id: str | None = None,
        element: int | None = None,
        code: str = "structure",
    ) -> X12Error:
        """One issue whose diagnostics and expression say where: ``segment 12 (NM1), element NM109``."""
        where: list[str] = []
        expr = ""
        if position is not None:
            where.append(f"segment {position}" + (f" ({segment_id})" if segment_id else ""))
            expr = f"segment[{position}]"
        elif segment_id:
            where.append(segment_id)
        if segment_id:
            expr = f"{expr}.{segment_id}" if expr else segment_id
        if element is not None and segment_id:
            where.append(f"element {segment_id}{element:02d}")
            expr = f"{expr}{element:02d}" if expr.endswith(segment_id) else f"{expr}.{element:02d}"
        text = f"{', '.join(where)}: {problem}" if where else problem
        issue = Issue(diagnostics=text, code=code, expression=(expr,) if expr else ())
        return cls(Failure.INVALID, (issue,))

    @classmethod
    def mapping(cls, problem: str, *expression: str) -> X12Error:
        """A PAS Bundle that cannot be expressed in X12 (FHIRPath expression names the element)."""
        return cls(Failure.INVALID, (Issue(diagnostics=problem, code="invalid", expression=expression),))


@contextmanager
def bundle_shape() -> Iterator[None]:
    """Turn a structural surprise in FHIR JSON (a string where an object belongs, ...) into an X12Error.

    The PAS use cases validate Bundles before translating them; this keeps anything they miss a 4xx.
    """
    try:
        yield
    except X12Error:
        raise
    except (AttributeError, TypeError, KeyError, ValueError, IndexError, ArithmeticError) as error:
        raise X12Error.mapping(
            f"the Bundle does not have the structure PAS requires ({type(error).__name__}: {error})", "Bundle"
        ) from error
