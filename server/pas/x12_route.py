"""Sending a PAS request to a legacy payer over X12 278, within the response budget.

``X12Routing.send`` translates the request Bundle to a 278 (``x12.bundle_to_278_request``), hands it to
the payer's :class:`X12Gateway` on a worker thread, and waits at most the route's budget (well inside
PAS's 15 seconds). An answer in time becomes the decision (``x12_answer``); no answer in time pends every
item and leaves the exchange running: its late answer completes the request through
``PasService.complete_from_x12`` (the same publish path as a reviewer's decision). Every exchange is
written to the exchange log.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from igs.outcome import OperationOutcomeError
from server.demo import DEMO_PAYER_ROUTES
from server.settings import Settings, SettingsError
from x12 import ControlNumbers, bundle_to_278_request
from x12.response import read_response

from .codes import ReviewAction
from .decision import Decision, ItemDecision
from .request import PasRequest
from .routing import PayerRoute, PayerRoutes, RoutesError, load_routes
from .submission import RejectedRequest
from .x12_answer import answer_from_278
from .x12_gateway import HttpX12Gateway, SimulatedX12Payer, X12Gateway, X12GatewayError
from .x12_log import AWAITING, FAILED, REJECTED, ExchangeLog, ExchangeRecord, outcome_of

log = logging.getLogger("priorgate.pas.x12")


def random_control() -> ControlNumbers:
    """ISA13 / GS06 control numbers: random, so processes need no shared counter."""
    return ControlNumbers(secrets.randbelow(999_999_998) + 1, secrets.randbelow(999_999_998) + 1)


@dataclass
class Sent:
    """What one exchange produced: the answer for ``process_submit`` and how it went."""

    exchange_id: str
    answer: Decision | RejectedRequest
    failed: bool = False  # the payer could not be reached: a PriorGate reviewer must take it over
    pending: Future[str] | None = None  # no answer within the budget: the late answer is still coming


@dataclass(frozen=True)
class X12Routing:
    """The routes, a gateway per X12 route, the exchange log and the threads exchanges run on."""

    routes: PayerRoutes
    gateways: Mapping[str, X12Gateway]  # by route payer
    log: ExchangeLog
    executor: Executor
    control: Callable[[], ControlNumbers] = random_control
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    client: httpx.Client | None = None  # closed with the routing

    def close(self) -> None:
        """Stop taking exchanges (running ones finish on their threads) and close the HTTP client."""
        self.executor.shutdown(wait=False)
        if self.client is not None:
            self.client.close()

    def route(self, request: PasRequest) -> PayerRoute | None:
        route = self.routes.x12_route(request)
        return route if route is not None and route.payer in self.gateways else None

    def send(
        self,
        route: PayerRoute,
        body: Mapping[str, Any],
        request: PasRequest,
        prior: Decision | None,
        *,
        submission_id: str,
        now: Callable[[], datetime],
    ) -> Sent:
        sent_at = now()
        # A request the translator cannot express as a 278 is the client's to fix (400 / 422).
        request_278 = bundle_to_278_request(dict(body), control=self.control(), now=sent_at)
        exchange_id = self.new_id()
        record = ExchangeRecord(
            exchange_id=exchange_id,
            submission_id=submission_id,
            payer=route.payer,
            endpoint=route.endpoint or "",
            claim_identifier=request.claim_identifiers[0].token() if request.claim_identifiers else "",
            request_278=request_278,
            sent_at=sent_at.isoformat(),
            outcome=AWAITING,
        )
        gateway = self.gateways[route.payer]
        future = self.executor.submit(
            gateway.exchange, request_278, timeout=route.budget + route.answer_timeout
        )
        try:
            response_278 = future.result(timeout=route.budget)
        except FutureTimeout:
            detail = f"no answer within {route.budget:g} s; the decision follows when the payer answers"
            self.log.add(replace(record, detail=detail))
            note = (
                f"Sent to the payer as an X12 278; no answer within {route.budget:g} seconds. "
                "The decision will follow (subscription notification or $inquire)."
            )
            return Sent(exchange_id, pended(request, prior, note, sent_at), pending=future)
        except (TimeoutError, X12GatewayError) as exc:
            self.log.add(replace(record, outcome=FAILED, received_at=now().isoformat(), detail=str(exc)))
            note = f"The payer could not be reached over X12 ({exc}); queued for review"
            return Sent(exchange_id, pended(request, prior, note, sent_at), failed=True)
        received = now()
        answer, outcome, reading = interpret(request, response_278, route.payer, received)
        if isinstance(answer, Decision) and prior is not None:
            answer = replace(answer, version=prior.version + 1)
        self.log.add(
            replace(
                record,
                response_278=response_278,
                received_at=received.isoformat(),
                outcome=outcome,
                detail=reading,
            )
        )
        if answer is None:
            note = f"The payer's 278 response could not be read ({reading}); queued for review"
            return Sent(exchange_id, pended(request, prior, note, sent_at), failed=True)
        return Sent(exchange_id, answer)


def interpret(
    request: PasRequest, response_278: str, payer: str, now: datetime
) -> tuple[Decision | RejectedRequest | None, str, str | None]:
    """The answer a 278 response carries, the exchange-log outcome and detail (None: unreadable)."""
    try:
        _, auth = read_response(response_278)
        answer = answer_from_278(request, auth, payer=payer, now=now)
    except OperationOutcomeError as exc:
        return None, FAILED, exc.message
    if isinstance(answer, RejectedRequest):
        return answer, REJECTED, "; ".join(f"AAA {e.code} at {e.element}" for e in answer.errors)
    return answer, outcome_of(answer), None


def pended(request: PasRequest, prior: Decision | None, note: str, now: datetime) -> Decision:
    """Every item pended with ``note`` (cancelled items stay cancelled)."""
    items = tuple(
        ItemDecision(item.sequence, ReviewAction.CANCELLED, trace_numbers=item.trace_numbers)
        if item.is_cancel or request.is_whole_cancel
        else ItemDecision(item.sequence, ReviewAction.PENDED, trace_numbers=item.trace_numbers, note=note)
        for item in request.items
    )
    return Decision(items=items, decided_at=now, version=prior.version + 1 if prior is not None else 1)


def load_x12_routing(settings: Settings, engine: Engine, now: Callable[[], datetime]) -> X12Routing | None:
    """The X12 routing of ``PRIORGATE_PAYER_ROUTES_FILE`` (with demo content and no file: the demo routes);
    None when no payer is routed over X12."""
    path = settings.payer_routes_file
    if path is None and settings.demo_content:
        path = DEMO_PAYER_ROUTES
    if path is None:
        return None
    try:
        routes = load_routes(path)
    except RoutesError as exc:
        raise SettingsError(f"invalid setting PRIORGATE_PAYER_ROUTES_FILE: {exc}") from None
    if not any(r.mode == "x12" for r in routes.routes):
        return None
    client = httpx.Client(follow_redirects=False)
    return X12Routing(
        routes=routes,
        gateways=gateways_for(routes, client, now),
        log=ExchangeLog(engine),
        executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="priorgate-x12"),
        client=client,
    )


def gateways_for(
    routes: PayerRoutes, client: httpx.Client, now: Callable[[], datetime]
) -> dict[str, X12Gateway]:
    """A gateway per X12 route: the simulated payer, or the payer's endpoint over ``client``."""
    out: dict[str, X12Gateway] = {}
    for route in routes.routes:
        if route.mode != "x12" or not route.endpoint:
            continue
        out[route.payer] = (
            SimulatedX12Payer(now) if route.simulated else HttpX12Gateway(client, route.endpoint)
        )
    return out
