"""Coverage assertions from the CRD services, kept so DTR and PAS can find the decision behind a
``coverage-assertion-id`` (CRD resp-31; DTR ``$questionnaire-package`` ``context``, DTR spec-107).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from cds_hooks import CoverageAssertion
from server.search.values import timestamp
from server.storage.schema import coverage_assertion


@dataclass(frozen=True)
class StoredAssertion:
    """What later steps need of one assertion: the decision's essentials and the questionnaires it names."""

    assertion_id: str
    crd_version: str
    order_reference: str
    coverage_reference: str
    payer_id: str
    covered: str
    pa_needed: str | None
    doc_needed: tuple[str, ...]
    questionnaires: tuple[str, ...]
    rule_id: str | None
    extension: Mapping[str, Any] | None = field(default=None, compare=False)  # the coverage-information


def _record(assertion: CoverageAssertion) -> dict[str, Any]:
    decision = assertion.decision
    return {
        "covered": decision.covered,
        "paNeeded": decision.pa_needed,
        "docNeeded": list(decision.doc_needed),
        "questionnaires": list(decision.questionnaires),
        "ruleId": decision.rule_id,
        "extension": dict(assertion.extension),
    }


class CoverageAssertionStore:
    """Coverage assertions in the ``coverage_assertion`` table (one tenant per store)."""

    def __init__(self, engine: Engine, tenant: str = "") -> None:
        self._engine = engine
        self._tenant = tenant

    def save(self, assertions: Iterable[CoverageAssertion], created: str) -> None:
        """Store each assertion once; a repeated id (the same order asked again) keeps the first.
        ``created`` is any ISO 8601 instant; it is stored in the fixed-width UTC form of every stamp."""
        created = timestamp(datetime.fromisoformat(created))
        for assertion in assertions:
            row = {
                "tenant": self._tenant,
                "assertion_id": assertion.id,
                "created": created,
                "crd_version": assertion.version,
                "service_id": assertion.service_id,
                "hook_instance": assertion.hook_instance,
                "order_reference": assertion.order_reference,
                "coverage_reference": assertion.coverage_reference,
                "payer_id": assertion.payer_id,
                "record": _record(assertion),
            }
            try:
                with self._engine.begin() as connection:
                    connection.execute(coverage_assertion.insert().values(**row))
            except IntegrityError:
                continue

    def find(self, assertion_id: str) -> StoredAssertion | None:
        query = select(coverage_assertion).where(
            coverage_assertion.c.tenant == self._tenant, coverage_assertion.c.assertion_id == assertion_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        if row is None:
            return None
        record = row["record"]
        return StoredAssertion(
            assertion_id=row["assertion_id"],
            crd_version=row["crd_version"],
            order_reference=row["order_reference"],
            coverage_reference=row["coverage_reference"],
            payer_id=row["payer_id"],
            covered=record["covered"],
            pa_needed=record.get("paNeeded"),
            doc_needed=tuple(record.get("docNeeded", ())),
            questionnaires=tuple(record.get("questionnaires", ())),
            rule_id=record.get("ruleId"),
            extension=record.get("extension") or None,
        )
