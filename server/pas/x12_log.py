"""The X12 exchange log: every 278 sent to a legacy payer and its answer, per PAS submission.

One ``pas_x12_exchange`` row per exchange (migration ``0012_x12_exchange``): the 278
request and response text exactly as sent and received, when each happened, and the outcome
(``approved``, ``modified``, ``denied``, ``pended``, ``decided`` for a mix, ``rejected`` for AAA,
``awaiting`` while a late answer is expected, ``failed`` when the payer could not be reached).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from server.storage.schema import pas_x12_exchange

from .codes import ReviewAction
from .decision import Decision

AWAITING = "awaiting"
FAILED = "failed"
REJECTED = "rejected"


@dataclass(frozen=True)
class ExchangeRecord:
    exchange_id: str
    submission_id: str
    payer: str
    endpoint: str
    claim_identifier: str
    request_278: str
    sent_at: str
    outcome: str
    response_278: str | None = None
    received_at: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": self.exchange_id,
            "submissionId": self.submission_id,
            "payer": self.payer,
            "endpoint": self.endpoint,
            "claimIdentifier": self.claim_identifier,
            "sentAt": self.sent_at,
            "receivedAt": self.received_at,
            "outcome": self.outcome,
            "detail": self.detail,
            "request278": self.request_278,
            "response278": self.response_278,
        }


def outcome_of(decision: Decision) -> str:
    """One word for the exchange log: what the payer's answer decided."""
    actions = {i.action for i in decision.items}
    if ReviewAction.PENDED in actions:
        return "pended"
    if actions == {ReviewAction.NOT_CERTIFIED}:
        return "denied"
    if actions <= {ReviewAction.CERTIFIED}:
        return "approved"
    if actions <= {ReviewAction.CERTIFIED, ReviewAction.MODIFIED}:
        return "modified"
    if actions == {ReviewAction.CANCELLED}:
        return "cancelled"
    return "decided"


class ExchangeLog:
    """``pas_x12_exchange`` for one tenant."""

    def __init__(self, engine: Engine, tenant: str = "") -> None:
        self._engine = engine
        self._tenant = tenant

    def add(self, record: ExchangeRecord) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                pas_x12_exchange.insert().values(
                    tenant=self._tenant,
                    exchange_id=record.exchange_id,
                    submission_id=record.submission_id,
                    payer=record.payer,
                    endpoint=record.endpoint,
                    claim_identifier=record.claim_identifier,
                    request_278=record.request_278,
                    response_278=record.response_278,
                    sent_at=record.sent_at,
                    received_at=record.received_at,
                    outcome=record.outcome,
                    detail=record.detail,
                )
            )

    def answered(
        self, exchange_id: str, response_278: str | None, received_at: str, outcome: str, detail: str | None
    ) -> None:
        """Record the (late) answer of an exchange."""
        with self._engine.begin() as connection:
            connection.execute(
                update(pas_x12_exchange)
                .where(
                    pas_x12_exchange.c.tenant == self._tenant,
                    pas_x12_exchange.c.exchange_id == exchange_id,
                )
                .values(response_278=response_278, received_at=received_at, outcome=outcome, detail=detail)
            )

    def get(self, exchange_id: str) -> ExchangeRecord | None:
        query = select(pas_x12_exchange).where(
            pas_x12_exchange.c.tenant == self._tenant, pas_x12_exchange.c.exchange_id == exchange_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _record(row) if row is not None else None

    def awaiting(self) -> list[ExchangeRecord]:
        """Exchanges still waiting for a late answer."""
        query = select(pas_x12_exchange).where(
            pas_x12_exchange.c.tenant == self._tenant, pas_x12_exchange.c.outcome == AWAITING
        )
        with self._engine.connect() as connection:
            return [_record(r) for r in connection.execute(query).mappings().all()]

    def for_submission(self, submission_id: str) -> list[ExchangeRecord]:
        """Every exchange of a submission, oldest first."""
        query = (
            select(pas_x12_exchange)
            .where(
                pas_x12_exchange.c.tenant == self._tenant,
                pas_x12_exchange.c.submission_id == submission_id,
            )
            .order_by(pas_x12_exchange.c.sent_at, pas_x12_exchange.c.exchange_id)
        )
        with self._engine.connect() as connection:
            return [_record(r) for r in connection.execute(query).mappings().all()]


def _record(row: object) -> ExchangeRecord:
    values = dict(row)  # type: ignore[call-overload]
    return ExchangeRecord(
        exchange_id=values["exchange_id"],
        submission_id=values["submission_id"],
        payer=values["payer"],
        endpoint=values["endpoint"],
        claim_identifier=values["claim_identifier"],
        request_278=values["request_278"],
        sent_at=values["sent_at"],
        outcome=values["outcome"],
        response_278=values["response_278"],
        received_at=values["received_at"],
        detail=values["detail"],
    )
