"""Building the :class:`OpsService` from the app's services (one call in ``create_app``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from cds_hooks import DEMO_POLICY_DIR, load_policies
from cds_hooks.policy import PolicySet
from server.pas.evaluator import PolicyCoverageRules
from server.services import Services
from server.storage.repository import Repository

from .auth import Passwords, origin_of
from .service import AuditSink, ExchangeEntry, OpsService
from .store import OpsStore


def repository_audit(repository: Repository) -> AuditSink:
    """Store each AuditEvent in the FHIR repository (searchable by auditors under ``/fhir/AuditEvent``)."""

    def record(event: dict[str, Any]) -> None:
        repository.create("AuditEvent", event)

    return record


def exchange_log(svc: Services) -> Callable[[str, str], Sequence[ExchangeEntry]] | None:
    """The X12 278 messages of a request routed to a legacy payer (``PasService.x12_exchanges`` in the
    request's tenant): each exchange as the 278 sent and, when it came, the 278 received."""
    if svc.pas.x12 is None:
        return None

    def entries(tenant: str, submission_id: str) -> Sequence[ExchangeEntry]:
        out: list[ExchangeEntry] = []
        pas = svc.pas if tenant == svc.pas.store.tenant else svc.pas.for_tenant(tenant)
        for record in pas.x12_exchanges(submission_id):
            note = f" ({record.detail})" if record.detail else ""
            sent = datetime.fromisoformat(record.sent_at)
            if record.request_278:
                out.append(
                    ExchangeEntry(sent, "outbound", f"278 request to {record.payer}", record.request_278)
                )
            if record.response_278:
                received = datetime.fromisoformat(record.received_at) if record.received_at else sent
                out.append(
                    ExchangeEntry(
                        received, "inbound", f"278 response: {record.outcome}{note}", record.response_278
                    )
                )
            else:
                out.append(ExchangeEntry(sent, "outbound", f"no 278 response: {record.outcome}{note}"))
        return out

    return entries


def build_ops(
    svc: Services, *, audit: AuditSink | None = None, passwords: Passwords | None = None
) -> OpsService:
    evaluate = svc.pas.evaluate
    policies: PolicySet = (
        evaluate.policies if isinstance(evaluate, PolicyCoverageRules) else load_policies(DEMO_POLICY_DIR)
    )
    payer = next(iter(policies.payers.values()), None)
    return OpsService(
        pas=svc.pas,
        store=OpsStore(svc.engine),
        resources=svc.repository,
        assertions=svc.assertions,
        policies=policies,
        now=svc.now,
        passwords=passwords or Passwords(),
        audit=audit or (svc.audit.write if svc.audit is not None else repository_audit(svc.repository)),
        exchange_log=exchange_log(svc),
        payer_name=payer.name if payer is not None else "PriorGate",
        server_url=svc.settings.base_url or "urn:priorgate",
        session_lifetime=timedelta(minutes=svc.settings.ops_session_minutes),
        secure_cookies=svc.settings.ops_secure_cookies,
        public_origin=origin_of(svc.settings.base_url),
    )
